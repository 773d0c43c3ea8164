#!/usr/bin/env bash
# What the test suite needs from the machine beyond .venv: Debian's mosquitto (private brokers of tests with their
# own settings), chromium (pages in a real browser), prometheus and prometheus-alertmanager (promtool, amtool and a
# real Prometheus checking deploy/prometheus), and a broker on 127.0.0.1:1883. As root (as on the project's
# machines and in CI) it installs and starts what is missing; otherwise it stops at once with the command to run,
# instead of letting a test fail after minutes.
set -euo pipefail

missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages the tests use: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "the tests need Debian's ${missing[*]}: run  sudo apt-get install -y ${missing[*]}  and then make test again" >&2
    exit 1
  fi
fi

broker_up() {
  python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 1883)) == 0 else 1)
PY
}

if ! broker_up; then
  echo "no MQTT broker on 127.0.0.1:1883: starting Debian's mosquitto"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then mosquitto -d -c /etc/mosquitto/mosquitto.conf; else mosquitto -d -p 1883; fi
  for _ in $(seq 1 50); do broker_up && break; sleep 0.2; done
  broker_up || { echo "mosquitto did not start on 127.0.0.1:1883; start it and run make test again" >&2; exit 1; }
fi
