#!/bin/sh
# Installed by selfhost.platform.rabbitmq. RabbitMQ 3.10 has no "check this config" command
# (rabbitmqctl and rabbitmq-diagnostics only talk to a running node), so a candidate
# rabbitmq.conf is checked the way the node itself reads it at boot: cuttlefish, with the
# schemas of the rabbit application and of the plugins named after the file. Unknown keys,
# values of the wrong type and out-of-range values fail with cuttlefish's own message.
# Every plugin named must be installed (the node refuses to boot otherwise).
# No node is started, no port is opened, nothing outside the candidate is read.
#   rabbitmq-validate CANDIDATE_RABBITMQ_CONF [PLUGIN...]
set -eu
candidate=$1
shift
plugins_dir=$(printf '%s\n' /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins | sort -V | tail -n 1)
schemas=""
for app in rabbit "$@"; do
    if ! ls -d "$plugins_dir/$app"-* >/dev/null 2>&1; then
        echo "rabbitmq-validate: plugin $app is not installed in $plugins_dir" >&2
        exit 1
    fi
    for schema in "$plugins_dir"/"$app"-*/priv/schema/*.schema; do
        [ -f "$schema" ] && schemas="$schemas\"$schema\","
    done
done
[ -n "$schemas" ] || { echo "rabbitmq-validate: no schema found under $plugins_dir" >&2; exit 2; }
export SELFHOST_CANDIDATE="$candidate"
exec /usr/bin/erl -noshell -noinput -boot no_dot_erlang -pa "$plugins_dir"/*/ebin -eval "
Report = fun(Errors) ->
    [io:format(standard_error, \"rabbitmq.conf: ~s~n\", [cuttlefish_error:xlate(E)]) || {error, E} <- Errors],
    halt(1)
end,
Schema = cuttlefish_schema:files([${schemas%,}]),
case cuttlefish_conf:files([os:getenv(\"SELFHOST_CANDIDATE\")]) of
    {errorlist, ConfErrors} -> Report(ConfErrors);
    Conf -> case cuttlefish_generator:map(Schema, Conf) of
                {error, _Phase, {errorlist, MapErrors}} -> Report(MapErrors);
                _ -> halt(0)
            end
end."
