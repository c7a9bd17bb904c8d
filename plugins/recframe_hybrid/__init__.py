"""Built-in recframe plugin package recframe_hybrid."""
