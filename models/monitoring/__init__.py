"""Model monitoring: drift statistics, performance estimation and realised performance, alarm rules, reports.

Pure Python (numpy, scipy, pandas, matplotlib); no Prefect and no I/O. ``tasks/monitoring.py`` reads the
lake and calls these functions; ``flows/monitor.py`` composes the tasks.
"""
