"""The built-in components of embedtune, registered through the same entry points as any pack."""
