"""Everything ultrapatch runs inside the fork's own interpreter: verify's checks (`checks/`, one module per check, in
one table), the session that runs them on each model and its stock control, synthetic data, the stock yardstick,
bench's timing, the checkpoint carrier and the DDP ranks.

It needs only the standard library, torch and the fork, so it works under whatever interpreter the user trains with,
where ultrapatch itself may not be installed. ultrapatch starts it through one launcher (`patcher/launcher.py`), which
runs `launch.py ENTRY ARGS...` with that interpreter; `launch.py` loads this folder as the package `ultrapatch_fork`
(never as top-level names that could shadow anything) and calls ENTRY's `main`. Inside, modules import each other
relatively, so the same files are also `patcher.fork` on ultrapatch's side (where `--list-checks` reads the table).
"""
