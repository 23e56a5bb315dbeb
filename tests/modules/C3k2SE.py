"""A C3k2 block whose output is re-weighted by squeeze-and-excitation, as the "C3k2 + attention" tutorials build it.

Written for ultrapatch's tests of `apply --module`: a subclass of C3k2 (role c3k2), which must get C3k2's own m/l/x
rule (`c3k=True` from scale m on) that a plain repeat registration would miss.
"""

from torch import nn

from ultralytics.nn.modules import C3k2


class C3k2SE(C3k2):
    def __init__(self, c1, c2, n=1, c3k=False, e=0.5, g=1, shortcut=True):
        super().__init__(c1, c2, n, c3k, e, g=g, shortcut=shortcut)
        hidden = max(8, c2 // 16)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c2, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, c2, 1), nn.Sigmoid())

    def forward(self, x):
        y = super().forward(x)
        return y * self.se(y)
