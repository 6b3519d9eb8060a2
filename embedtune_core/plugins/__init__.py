"""The plugin system: hook specs (:mod:`.hookspecs`), finding and loading plugins
(:mod:`.manager`), the component registry (:mod:`.registry`)."""
