"""A/B tests of a challenger model version against the production champion (``ExperimentService``)."""
