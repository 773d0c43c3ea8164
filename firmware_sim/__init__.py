"""Physical water-heater simulator: telemetry, fault modes, and the cold-start history."""
