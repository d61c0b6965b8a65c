"""Environment suites registered with gymnasium. Imports nothing of rimrl's."""
