#!/bin/sh
# The `init` service of docker-compose.yml: what a deployment needs once before the cloud serves and the gateways
# start. Each step is skipped once done, so `docker compose up` may run it again at every start.
#   1. `cloud init`: the encrypted signing keys and the TUF repository, in the cloud's data volume
#      (the database's schema is migrated by the first command that opens it).
#   2. The first model: a simulated cold-start history, `cloud train` on it, `cloud release`: signed into TUF and,
#      as a model's first release, production (the jobs role directs each gateway to it when it first reports).
#   3. Each gateway's provisioning volume: the TUF root (`admin export-root`), its trust anchor, and an API key of
#      role gateway bound to its id (`admin create-key`), which its container reads at start.
# Settings (the compose service's environment): INIT_GATEWAYS, INIT_MODEL, INIT_HISTORY_HEATERS, INIT_HISTORY_DAYS,
# PROVISION_DIR, and the cloud's IOTSPHERE_* variables.
set -eu
: "${IOTSPHERE_DATA_DIR:?}" "${INIT_GATEWAYS:?}" "${INIT_MODEL:?}" "${PROVISION_DIR:?}"
: "${INIT_HISTORY_HEATERS:?}" "${INIT_HISTORY_DAYS:?}"
umask 077

if [ ! -f "$IOTSPHERE_DATA_DIR/tuf/metadata/root.json" ]; then
    iotsphere cloud init
fi

cold_start="$IOTSPHERE_DATA_DIR/cold-start"
mkdir -p "$cold_start"
if [ ! -f "$cold_start/history.npz" ]; then
    iotsphere sim history --heaters "$INIT_HISTORY_HEATERS" --days "$INIT_HISTORY_DAYS" \
        --out "$cold_start/history-partial.npz"
    mv "$cold_start/history-partial.npz" "$cold_start/history.npz"
fi
if [ ! -f "$cold_start/$INIT_MODEL.released" ]; then
    iotsphere cloud train --history "$cold_start/history.npz" --model "$INIT_MODEL" > "$cold_start/train.log"
    cat "$cold_start/train.log"
    iotsphere cloud release "$(tail -n 1 "$cold_start/train.log")"  # its last line: the artifact folder
    touch "$cold_start/$INIT_MODEL.released"
fi

for gateway in $INIT_GATEWAYS; do
    provision="$PROVISION_DIR/$gateway"
    mkdir -p "$provision"
    iotsphere admin export-root --out "$provision/root.json"
    if [ ! -s "$provision/api.key" ]; then
        iotsphere admin create-key --role gateway --name "gateway $gateway" --gateway "$gateway" \
            > "$provision/api.key.partial"
        mv "$provision/api.key.partial" "$provision/api.key"
    fi
done
echo "init: done (gateways provisioned: $INIT_GATEWAYS)"
