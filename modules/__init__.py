"""Backbone source files that ultrapatch copies into a tree's ``ultralytics/nn/AddModules/`` (ships as patcher.modules)."""
