"""One collector module per concern, node_exporter style; `exporter/collector.py` joins them."""
