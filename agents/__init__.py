"""Learning algorithms built on Stable-Baselines3. May import ``rimrl`` core modules."""
