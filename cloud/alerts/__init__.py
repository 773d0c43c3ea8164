"""The alert inbox: conditions that need a person (drift found, a rollout halted, a gateway offline past a threshold,
an experiment concluded, a training run failed, a security event), acknowledged and resolved with who and when, and
sent to a webhook in Alertmanager's format so one receiver serves the inbox and Prometheus' alerts alike."""
