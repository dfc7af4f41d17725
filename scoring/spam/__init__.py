"""The spam model: the seed study's user features plus graph features, K-Means with the
elbow method, cluster naming from centroids, an MLP trained on cluster labels."""
