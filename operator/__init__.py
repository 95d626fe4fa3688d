"""The kopf operator that reconciles Broadcast resources."""
