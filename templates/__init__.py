"""Model YAML templates that ultrapatch installs into a tree's config folders (ships as patcher.templates)."""
