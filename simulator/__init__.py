"""An api-v2-compatible platform with a seeded synthetic world and its ground truth."""
