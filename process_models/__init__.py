"""process_models package."""
