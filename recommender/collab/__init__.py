"""The trained sequence model in service: training from stored events, versioned publishing, encoding."""
