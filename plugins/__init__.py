"""Built-in plugins of ecgsearch (import name ``ecgsearch_plugins``)."""
