"""Built-in recframe plugin package recframe_ctr: click (CTR) models over typed fields."""
