"""``rimrl compare``: reading runs, statistics, figures and the Markdown report."""
