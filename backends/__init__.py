"""Built-in backends. Each folder is an ordinary ptsdk plugin (see DEFAULT_PLUGINS)."""
