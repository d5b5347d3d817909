"""Where datasets, models, metrics and run records live: a local folder by default, Swift on a cloud."""
