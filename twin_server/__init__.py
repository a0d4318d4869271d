"""twin_server package."""
