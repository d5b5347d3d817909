#!/usr/bin/env bash
# A real OpenStack control plane on loopback for CI: Keystone, Swift, Heat, Placement, Nova (fake compute
# driver), Glance and Neutron's API, from pinned PyPI releases, with MariaDB, RabbitMQ and memcached from
# Debian. Everything listens on one 127.0.0.x address and keeps its state under one directory.
#
#   devstack/controlplane.sh up       install what is missing, start everything, wait until every API answers
#   devstack/controlplane.sh down     stop every process this script started (state is kept)
#   devstack/controlplane.sh status   list the services and whether they run
#   devstack/controlplane.sh restart NAME [--crash]
#                                     stop one service (SIGTERM, or SIGKILL of its process group with --crash, as
#                                     a crash would), then up: it alone starts again
#   devstack/controlplane.sh purge    down, then delete the state directory
#
# Run as root on Debian 12. Environment (all optional):
#   DATAOPS_CP_IP              listen address                (default 127.0.0.42)
#   DATAOPS_CP_STATE           state directory               (default devstack/.state)
#   DATAOPS_CP_VENV            services' virtualenv          (default /var/cache/dataops-controlplane/venv)
#   DATAOPS_NOVA_COMPUTE_DRIVER Nova compute driver          (default auto: dataops_netns.NetnsDriver, whose
#                              servers are network-namespace hosts with sshd, when root with openssh-server;
#                              else fake.FakeDriverWithoutFakeNodes)
#   DATAOPS_HEAT_CONVERGENCE   true|false, Heat's engine     (default true, Heat's default engine)
set -euo pipefail
# The services run from their own virtualenv: a caller's PYTHONPATH (a test session restarting one) must not reach
# them.
unset PYTHONPATH PYTHONHOME

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP=$REPO/devstack/controlplane
IP=${DATAOPS_CP_IP:-127.0.0.42}
STATE=${DATAOPS_CP_STATE:-$REPO/devstack/.state}
VENV=${DATAOPS_CP_VENV:-/var/cache/dataops-controlplane/venv}
COMPUTE_DRIVER=${DATAOPS_NOVA_COMPUTE_DRIVER:-auto}
NETNS_DRIVER=dataops_netns.NetnsDriver
HEAT_CONVERGENCE=${DATAOPS_HEAT_CONVERGENCE:-true}
EPMD_PORT=14369
APT_PACKAGES=(mariadb-server rabbitmq-server memcached curl iproute2)

# name:port:path of every HTTP API, checked in this order by the readiness wait.
APIS=(keystone:5000:/v3 swift-proxy:8080:/healthcheck placement:8778:/ nova-api:8774:/ glance:9292:/
      neutron:9696:/ heat-api:8004:/)

log() { printf '%s controlplane: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pidfile() { echo "$STATE/run/$1.pid"; }

alive() { # NAME: true if the process recorded for NAME runs
    local f; f=$(pidfile "$1")
    [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

spawn() { # NAME COMMAND...: start COMMAND in its own session (so down can stop its whole group)
    local name=$1; shift
    if alive "$name"; then return 0; fi
    setsid "$@" </dev/null >>"$STATE/logs/$name.out" 2>&1 &
    echo $! >"$(pidfile "$name")"
}

tail_logs() { # NAME: the end of what NAME wrote, to explain a failure
    local f
    for f in "$STATE/logs/$1.out" "$STATE/logs/$1.log" "$STATE/logs/${1%%-*}.log"; do
        [[ -s $f ]] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
    done
    return 0
}

# --- installation -----------------------------------------------------------------------------------

ensure_packages() {
    local missing=()
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
    command -v memcached >/dev/null || missing+=(memcached)
    command -v curl >/dev/null || missing+=(curl)
    command -v ip >/dev/null || missing+=(iproute2)
    # sshd for the namespace hosts of the netns compute driver (its own instances; the system one stays off).
    [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
    ((${#missing[@]} == 0)) && return 0
    log "apt-get install ${missing[*]}"
    # The packages' own services stay stopped: this script runs private instances.
    local policy=/usr/sbin/policy-rc.d created=
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [[ -n $created ]] && rm -f $policy
    return 0
}

pins_digest() {
    cat "$CP/requirements.txt" "$CP/constraints.txt" "$CP"/ml2-bindall/pyproject.toml \
        "$CP"/ml2-bindall/dataops_ml2_bindall/*.py | sha256sum | cut -d' ' -f1
}

ensure_venv() { # reuse the cached virtualenv when it was built from the same pins
    local digest; digest=$(pins_digest)
    if [[ -f $VENV/.pins && $(cat "$VENV/.pins") == "$digest" ]]; then return 0; fi
    log "building the services' virtualenv in $VENV (a few minutes)"
    local python; python=$(command -v python3.11 || command -v python3)
    rm -rf "$VENV.new"
    "$python" -m venv "$VENV.new"
    "$VENV.new/bin/pip" install -q -U pip wheel setuptools
    "$VENV.new/bin/pip" install -q -r "$CP/requirements.txt" -c "$CP/constraints.txt"
    # Built from a copy: setuptools would otherwise leave build/ and *.egg-info in the repository.
    local src; src=$(mktemp -d)
    cp -r "$CP/ml2-bindall/." "$src"
    "$VENV.new/bin/pip" install -q --no-deps --no-build-isolation "$src"
    rm -rf "$src"
    "$VENV.new/bin/pip" check >/dev/null
    echo "$digest" >"$VENV.new/.pins"
    rm -rf "$VENV"
    mv "$VENV.new" "$VENV"
    # A moved virtualenv keeps its old path in script shebangs: rewrite them.
    grep -rlI "^#!$VENV.new/bin/python" "$VENV/bin" | xargs -r sed -i "1s|$VENV.new/bin/python|$VENV/bin/python|"
    sed -i "s|$VENV.new|$VENV|g" "$VENV/bin/activate" "$VENV/pyvenv.cfg"
}

# --- configuration ----------------------------------------------------------------------------------

ensure_secrets() { # random passwords, created once per state directory, readable by root only
    local f=$STATE/secrets.env
    if [[ ! -s $f ]]; then
        umask 077
        {
            echo "DATAOPS_CP_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
            echo "DATAOPS_CP_SERVICE_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
            echo "DATAOPS_CP_USER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
            echo "DATAOPS_CP_DB_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
            echo "DATAOPS_CP_SWIFT_HASH=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        } >"$f"
        umask 022
    fi
    set -a; . "$f"; set +a
}

choose_compute_driver() { # auto: real namespace hosts when this machine can make them
    [[ $COMPUTE_DRIVER == auto ]] || return 0
    if [[ $(id -u) == 0 && -x /usr/sbin/sshd ]] && command -v unshare >/dev/null && command -v start-stop-daemon >/dev/null
    then COMPUTE_DRIVER=$NETNS_DRIVER
    else COMPUTE_DRIVER=fake.FakeDriverWithoutFakeNodes
    fi
}

install_netns_driver() { # Nova loads drivers from nova.virt only: a one-line module there imports ours
    [[ $COMPUTE_DRIVER == "$NETNS_DRIVER" ]] || return 0
    local virt; virt=$("$VENV/bin/python" -c 'import nova.virt, os; print(os.path.dirname(nova.virt.__file__))')
    printf '"""dataops CI: servers as network-namespace hosts (devstack/netns_driver)."""\nfrom netns_driver.driver import NetnsDriver  # noqa: F401\n' \
        >"$virt/dataops_netns.py"
}

render_configs() { # copy etc/ templates into the state directory, filling in addresses, paths, secrets
    rm -rf "$STATE/etc"
    cp -r "$CP/etc" "$STATE/etc"
    chmod -R go-rwx "$STATE/etc"
    find "$STATE/etc" -type f -exec sed -i \
        -e "s|@IP@|$IP|g" -e "s|@STATE@|$STATE|g" -e "s|@COMPUTE_DRIVER@|$COMPUTE_DRIVER|g" \
        -e "s|@HEAT_CONVERGENCE@|$HEAT_CONVERGENCE|g" -e "s|@SERVICE_PASSWORD@|$DATAOPS_CP_SERVICE_PASSWORD|g" \
        -e "s|@DB_PASSWORD@|$DATAOPS_CP_DB_PASSWORD|g" -e "s|@SWIFT_HASH@|$DATAOPS_CP_SWIFT_HASH|g" {} +
    # The services' paste pipelines are the ones shipped with the pinned releases.
    cp "$VENV/etc/nova/api-paste.ini" "$STATE/etc/nova/api-paste.ini"
    cp "$VENV/etc/neutron/api-paste.ini" "$STATE/etc/neutron/api-paste.ini"
    cp "$VENV/etc/glance/glance-api-paste.ini" "$STATE/etc/glance/glance-api-paste.ini"
    cp "$VENV/etc/heat/api-paste.ini" "$STATE/etc/heat/api-paste.ini"
    echo '[].' >"$STATE/etc/rabbitmq-plugins"
}

write_clouds_yaml() {
    umask 077
    cat >"$STATE/clouds.yaml" <<EOF
# Written by devstack/controlplane.sh: the CI control plane on $IP.
clouds:
  dataops-ci:
    auth:
      auth_url: http://$IP:5000/v3
      username: dataops-dev
      password: $DATAOPS_CP_USER_PASSWORD
      project_name: dataops-dev
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
  dataops-ci-other:
    auth:
      auth_url: http://$IP:5000/v3
      username: dataops-other
      password: $DATAOPS_CP_USER_PASSWORD
      project_name: dataops-other
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
  dataops-ci-admin:
    auth:
      auth_url: http://$IP:5000/v3
      username: admin
      password: $DATAOPS_CP_ADMIN_PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
EOF
    umask 022
}

# --- infrastructure ---------------------------------------------------------------------------------

wait_port() { # NAME PORT SECONDS
    local deadline=$((SECONDS + $3))
    until (echo >"/dev/tcp/$IP/$2") 2>/dev/null; do
        alive "$1" || { tail_logs "$1"; die "$1 exited before listening on $IP:$2"; }
        ((SECONDS < deadline)) || { tail_logs "$1"; die "$1 is not listening on $IP:$2 after $3 s"; }
        sleep 0.5
    done
}

sql() { mariadb --defaults-file="$STATE/etc/my.cnf" -uroot "$@"; }

start_mariadb() {
    if [[ ! -d $STATE/mysql/mysql ]]; then
        mariadb-install-db --defaults-file="$STATE/etc/my.cnf" --auth-root-authentication-method=socket \
            >"$STATE/logs/mariadb-install.out" 2>&1 || { tail_logs mariadb-install; die "mariadb-install-db failed"; }
    fi
    spawn mariadb mariadbd --defaults-file="$STATE/etc/my.cnf"
    wait_port mariadb 3306 60
    # Connections to 127.0.0.x may come from 127.0.0.1 (the kernel's choice of source address).
    sql <<EOF
CREATE USER IF NOT EXISTS 'dataops'@'127.%' IDENTIFIED BY '$DATAOPS_CP_DB_PASSWORD';
ALTER USER 'dataops'@'127.%' IDENTIFIED BY '$DATAOPS_CP_DB_PASSWORD';
$(for db in keystone placement nova_api nova_cell0 nova_cell1 glance neutron heat; do
    echo "CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb3;"
done)
GRANT ALL PRIVILEGES ON *.* TO 'dataops'@'127.%';
EOF
}

rabbit_env() { # the env(1) prefix that points RabbitMQ commands at the private node
    echo env HOME="$STATE/data/rabbitmq" RABBITMQ_NODENAME=dataops@localhost \
        RABBITMQ_CONFIG_FILE="$STATE/etc/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/etc/rabbitmq-plugins" \
        RABBITMQ_MNESIA_BASE="$STATE/data/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$STATE/logs/rabbitmq" \
        RABBITMQ_DIST_PORT=25699 ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS="$IP"
}

start_rabbitmq() {
    mkdir -p "$STATE/data/rabbitmq" "$STATE/logs/rabbitmq"
    # Our own epmd, in the foreground, so that down stops it too.
    spawn epmd epmd -port $EPMD_PORT -address "$IP"
    # shellcheck disable=SC2046  # paths under STATE contain no spaces
    spawn rabbitmq $(rabbit_env) /usr/lib/rabbitmq/bin/rabbitmq-server
    spawn memcached memcached -l "$IP" -p 11211 -U 0 -m 64 -u root
}

# --- OpenStack --------------------------------------------------------------------------------------

run_logged() { # NAME COMMAND...: run to completion, logging to logs/NAME.out
    local name=$1; shift
    "$@" >"$STATE/logs/$name.out" 2>&1 || { tail_logs "$name"; return 1; }
}

step() { # NAME COMMAND...: one migration chain, logged; its name is in the log file
    local name=$1; shift
    { "$@"; } >>"$STATE/logs/$name.out" 2>&1 || { tail_logs "$name"; return 1; }
}

V() { "$VENV/bin/$1" "${@:2}"; }

migrate_keystone() {
    local k=$STATE/etc/keystone/keystone.conf url=http://$IP:5000/v3/
    V keystone-manage --config-file "$k" db_sync
    V keystone-manage --config-file "$k" fernet_setup --keystone-user root --keystone-group root
    V keystone-manage --config-file "$k" receipt_setup --keystone-user root --keystone-group root
    V keystone-manage --config-file "$k" credential_setup --keystone-user root --keystone-group root
    V keystone-manage --config-file "$k" bootstrap --bootstrap-password "$DATAOPS_CP_ADMIN_PASSWORD" \
        --bootstrap-admin-url "$url" --bootstrap-internal-url "$url" --bootstrap-public-url "$url" \
        --bootstrap-region-id RegionOne
}

migrate_nova() {
    local n=$STATE/etc/nova/nova.conf
    V nova-manage --config-file "$n" api_db sync
    V nova-manage --config-file "$n" cell_v2 map_cell0 --database_connection \
        "mysql+pymysql://dataops:$DATAOPS_CP_DB_PASSWORD@$IP:3306/nova_cell0?charset=utf8"
    V nova-manage --config-file "$n" db sync
    V nova-manage --config-file "$n" cell_v2 list_cells | grep -q ' cell1 ' ||
        V nova-manage --config-file "$n" cell_v2 create_cell --name cell1
}

migrate_all() { # every service's schema, in parallel (they are independent)
    local e=$STATE/etc pids=() names=() i failed=0
    step migrate-keystone migrate_keystone & pids+=($!); names+=(keystone)
    step migrate-nova migrate_nova & pids+=($!); names+=(nova)
    step migrate-placement V placement-manage --config-file "$e/placement/placement.conf" db sync & pids+=($!); names+=(placement)
    step migrate-glance V glance-manage --config-file "$e/glance/glance-api.conf" db_sync & pids+=($!); names+=(glance)
    step migrate-neutron V neutron-db-manage --config-file "$e/neutron/neutron.conf" \
        --config-file "$e/neutron/ml2_conf.ini" upgrade heads & pids+=($!); names+=(neutron)
    step migrate-heat V heat-manage --config-file "$e/heat/heat.conf" db_sync & pids+=($!); names+=(heat)
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { log "schema migration of ${names[$i]} failed"; failed=1; }
    done
    ((failed == 0)) || die "schema migrations failed (logs in $STATE/logs/migrate-*.out)"
}

make_rings() {
    local b=$STATE/etc/swift kind port
    mkdir -p "$STATE/data/swift/d1" "$STATE/data/swift-recon"
    for kind in object:6200 container:6201 account:6202; do
        port=${kind#*:}; kind=${kind%%:*}
        [[ -f $b/$kind.ring.gz ]] && continue
        (cd "$b" && V swift-ring-builder $kind.builder create 8 1 1 &&
            V swift-ring-builder $kind.builder add "r1z1-$IP:$port/d1" 1 &&
            V swift-ring-builder $kind.builder rebalance) >>"$STATE/logs/swift-rings.out" 2>&1 ||
            { tail_logs swift-rings; die "swift-ring-builder failed"; }
    done
}

gunicorn_api() { # NAME MODULE PORT [THREADS]
    spawn "$1" env PYTHONPATH="$CP/wsgi" \
        OS_KEYSTONE_CONFIG_FILES="$STATE/etc/keystone/keystone.conf" \
        OS_PLACEMENT_CONFIG_DIR="$STATE/etc/placement" OS_NOVA_CONFIG_DIR="$STATE/etc/nova" \
        OS_GLANCE_CONFIG_DIR="$STATE/etc/glance" \
        OS_NEUTRON_CONFIG_FILES="$STATE/etc/neutron/neutron.conf;$STATE/etc/neutron/ml2_conf.ini" \
        DATAOPS_HEAT_CONF="$STATE/etc/heat/heat.conf" \
        "$VENV/bin/gunicorn" --bind "$IP:$3" --workers 1 --threads "${4:-4}" --timeout 300 \
        --keep-alive 75 --no-control-socket --name "dataops-$1" --access-logfile "$STATE/logs/$1-access.log" \
        "$2:application"
}

start_keystone() { gunicorn_api keystone dataops_wsgi_keystone 5000 4; }

start_services() {
    local e=$STATE/etc s
    make_rings
    for s in account container object proxy; do
        # -v: log to the console (redirected to logs/), the machine may have no syslog socket.
        spawn "swift-$s" "$VENV/bin/swift-$s-server" "$e/swift/$s-server.conf" -v
    done
    gunicorn_api placement dataops_wsgi_placement 8778
    gunicorn_api nova-api dataops_wsgi_nova 8774
    gunicorn_api glance dataops_wsgi_glance 9292
    gunicorn_api neutron dataops_wsgi_neutron 9696 8
    gunicorn_api heat-api dataops_wsgi_heat 8004
    spawn heat-engine "$VENV/bin/heat-engine" --config-file "$e/heat/heat.conf"
    # Conductor and scheduler exit on a 401 when their service users do not exist yet: the catalog is
    # registered before this point.
    for s in conductor scheduler; do
        spawn "nova-$s" "$VENV/bin/nova-$s" --config-file "$e/nova/nova.conf"
    done
    # The netns driver is imported from devstack/ itself.
    # Hosts reach Keystone and Swift at the same address as the machine (relayed into each namespace).
    spawn nova-compute env PYTHONPATH="$REPO/devstack" DATAOPS_NETNS_RELAY="$IP:5000,8080" \
        "$VENV/bin/nova-compute" --config-file "$e/nova/nova.conf"
}

wait_apis() { # every API answers below 500, or fail with the log tail of the first one that does not
    local entry name port path code deadline=$((SECONDS + ${1:-300}))
    for entry in "${APIS[@]}"; do
        IFS=: read -r name port path <<<"$entry"
        while :; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$IP:$port$path" || true)
            [[ $code =~ ^[234] ]] && break
            alive "$name" || { tail_logs "$name"; die "$name exited (http://$IP:$port$path)"; }
            ((SECONDS < deadline)) || { tail_logs "$name"; die "$name does not answer on http://$IP:$port$path (last status ${code:-none})"; }
            sleep 1
        done
    done
}

check_daemons() { # the services without an HTTP API must still run
    local name
    for name in heat-engine nova-conductor nova-scheduler nova-compute swift-account swift-container swift-object \
                rabbitmq memcached mariadb; do
        alive "$name" || { tail_logs "$name"; die "$name is not running"; }
    done
}

bootstrap_py() { "$VENV/bin/python" "$CP/bootstrap.py" "$@"; }

ALL_SERVICES=(nova-compute nova-scheduler nova-conductor heat-engine heat-api neutron glance nova-api placement
              swift-proxy swift-object swift-container swift-account keystone memcached rabbitmq epmd mariadb)

cmd_up() {
    [[ $(id -u) == 0 ]] || die "run as root (it installs apt packages and runs the services as root)"
    local t0=$SECONDS
    ensure_packages
    ensure_venv
    mkdir -p "$STATE"/{run,logs,data/locks,data/nova/instances,data/neutron,data/keystone,data/glance}
    ensure_secrets
    choose_compute_driver
    install_netns_driver
    export DATAOPS_CP_IP=$IP DATAOPS_CP_STATE=$STATE
    # Each set-up phase leaves a stamp, so an interrupted or failed up resumes where it stopped.
    local fresh=
    [[ -f $STATE/.bootstrapped ]] || fresh=1
    render_configs
    start_mariadb
    start_rabbitmq
    if [[ ! -f $STATE/.migrated ]]; then
        log "migrating the databases"
        migrate_all
        touch "$STATE/.migrated"
    fi
    start_keystone
    wait_port rabbitmq 5672 120
    local all_apis=("${APIS[@]}")
    APIS=("${APIS[0]}"); wait_apis 120; APIS=("${all_apis[@]}")
    if [[ ! -f $STATE/.catalog ]]; then
        log "registering the catalog"
        run_logged bootstrap-catalog bootstrap_py catalog || die "catalog registration failed"
        touch "$STATE/.catalog"
    fi
    local services_started; services_started=$(date +%s)
    start_services
    log "waiting for every API"
    wait_apis 300
    check_daemons
    run_logged bootstrap-ready bootstrap_py ready "$services_started" || die "the compute services did not report"
    if [[ -n $fresh ]]; then
        log "creating flavors, image, networks, projects"
        run_logged bootstrap-cloud bootstrap_py cloud || die "cloud set-up failed"
        touch "$STATE/.bootstrapped"
    fi
    write_clouds_yaml
    log "up in $((SECONDS - t0)) s (compute driver $COMPUTE_DRIVER); OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml OS_CLOUD=dataops-ci"
}

stop_one() { # NAME: SIGTERM to its process group, SIGKILL after 30 s
    local f pid i
    f=$(pidfile "$1")
    [[ -s $f ]] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

remove_netns_hosts() { # namespace hosts of servers never deleted: gone with the control plane, as their bridges
    local hosts=$STATE/data/nova/netns-hosts
    [[ -d $hosts ]] || return 0
    PYTHONPATH="$REPO/devstack" python3 -m netns_driver.cleanup "$hosts" >>"$STATE/logs/netns-cleanup.out" 2>&1 ||
        { tail_logs netns-cleanup; log "some namespace hosts could not be removed"; }
}

cmd_down() {
    local name pids=()
    # Stop in parallel (nova-compute alone takes over 20 s on SIGTERM), dependents first.
    for name in "${ALL_SERVICES[@]}"; do
        case $name in rabbitmq | epmd | mariadb) ;; *) stop_one "$name" & pids+=($!) ;; esac
    done
    wait "${pids[@]}" 2>/dev/null || true
    remove_netns_hosts
    if alive rabbitmq; then $(rabbit_env) /usr/lib/rabbitmq/bin/rabbitmqctl stop >/dev/null 2>&1 || true; fi
    for name in rabbitmq epmd mariadb; do stop_one "$name"; done
    local left
    left=$(ss -Hltn "src $IP" 2>/dev/null | wc -l)
    ((left == 0)) || die "$left sockets still listen on $IP after down: $(ss -Hltnp "src $IP")"
    log "stopped"
}

cmd_status() {
    local name
    for name in "${ALL_SERVICES[@]}"; do
        if alive "$name"; then echo "$name running (pid $(cat "$(pidfile "$name")"))"; else echo "$name stopped"; fi
    done
}

cmd_restart() { # NAME [--crash]
    local name=${1:-} crash=${2:-} pid
    [[ " ${ALL_SERVICES[*]} " == *" $name "* ]] || die "restart: no service ${name:-(none)}; one of ${ALL_SERVICES[*]}"
    if [[ $crash == --crash ]]; then
        pid=$(cat "$(pidfile "$name")" 2>/dev/null || true)
        [[ -n $pid ]] && kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$(pidfile "$name")"
    else
        stop_one "$name"
    fi
    log "$name stopped${crash:+ (SIGKILL)}; starting it again"
    cmd_up
}

case ${1:-} in
    up) cmd_up ;;
    restart) shift; cmd_restart "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    purge) cmd_down; rm -rf "$STATE" ;;
    *) echo "usage: $0 up|down|status|purge|restart NAME [--crash]" >&2; exit 2 ;;
esac
