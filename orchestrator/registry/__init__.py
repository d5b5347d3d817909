"""The model registry: immutable, versioned model folders in an ArtifactStore, with stages."""
