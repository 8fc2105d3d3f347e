# The scale scenarios of scripts/bench.sh (issue 21: rooms larger than one object, and a Spring
# app's chat rooms each in an object of its own); sourced by bench.sh, which defines `step`,
# `loadgen`, `record`, `wait_http`, `PIDS_TO_STOP`, `WORK` and `RESULTS`, and runs
# `scale_scenarios` (alone with `bash scripts/bench.sh scale`).
#
# Two stomp-rooms servers of their own, both on CPU 0, each with LOAD_TEST_SETTINGS and the
# Spring tutorial's destinations (`/sub/` acts as `/topic/`; a SEND to `/pub/chat/message` goes
# to `/sub/chat/room/{roomId}` of its JSON body), and:
#   direct:  `scaling.members_per_object: 0`: every socket of a room on the room's own object;
#   sharded: the default `scaling` (a room holds 1,000 sockets itself, then gateway objects of
#            1,000 each take the rest) and `room_destinations: ["/sub/chat/room/{room}"]`.
# Settings (environment): SCALE_MEMBERS ("1000 5000 10000"), SCALE_PARALLEL (connections
# opening at once, 200), SCALE_PACED_DELIVERIES (deliveries/s the paced phase aims at, 10000:
# 10 messages/s into 1,000 members, 1/s into 10,000), SCALE_PACED_SECONDS (10),
# SCALE_UNPACED_DELIVERIES (200000: the unpaced phase's messages are this over the members).

SCALE_DIRECT_PORT=8816 SCALE_SHARDED_PORT=8817
SPRING_DESTINATIONS='{"topics": ["/sub/"], "application": {"/pub/chat/message": "/sub/chat/room/{roomId}"}}'

# LOAD_TEST_SETTINGS with the Spring destinations and the given `scaling`.
scale_settings() {
    python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["destinations"]=json.loads(sys.argv[2]); s["scaling"]=json.loads(sys.argv[3]); print(json.dumps(s))' \
        "$LOAD_TEST_SETTINGS" "$SPRING_DESTINATIONS" "$1"
}

# One loadgen run: its JSON, tagged, to the results; a run that fails is recorded as failed
# (with the end of its log), and the others go on.
scale_run() { # name, tags (JSON), loadgen arguments...
    local name="$1" tags="$2"; shift 2
    if loadgen "$@" > "$WORK/$name.json" 2> >(tee "$WORK/$name.log" >&2); then
        record "$tags" "$SCALE_TAGS" < "$WORK/$name.json"
    else
        step "$name failed (above; $WORK/$name.log)"
        python3 -c 'import json,sys; print(json.dumps({"scenario": sys.argv[2], "failed": open(sys.argv[1]).read()[-2000:]}))' \
            "$WORK/$name.log" "$1" | record "$tags" "$SCALE_TAGS"
    fi
}

scale_scenarios() {
    local members_list parallel paced_deliveries paced_seconds unpaced_deliveries limit
    read -r -a members_list <<< "${SCALE_MEMBERS:-1000 5000 10000}"
    parallel="${SCALE_PARALLEL:-200}"
    paced_deliveries="${SCALE_PACED_DELIVERIES:-10000}"
    paced_seconds="${SCALE_PACED_SECONDS:-10}"
    unpaced_deliveries="${SCALE_UNPACED_DELIVERIES:-200000}"
    limit="$(ulimit -n)"
    local -A port=([direct]=$SCALE_DIRECT_PORT [sharded]=$SCALE_SHARDED_PORT) group settings
    settings[direct]="$(scale_settings '{"members_per_object": 0}')"
    settings[sharded]="$(scale_settings '{"room_destinations": ["/sub/chat/room/{room}"]}')"
    local commit
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    [ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock wrangler.toml 2>/dev/null)" ] || commit="$commit with uncommitted changes"
    SCALE_TAGS="$(python3 -c 'import datetime,json,sys; print(json.dumps({"measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": sys.argv[1], "open_file_limit": int(sys.argv[2])}))' "$commit" "$limit")"

    local placement
    for placement in direct sharded; do
        step "starting stomp-rooms '$placement' for the scale scenarios (port ${port[$placement]}) on CPU 0"
        rm -rf "$WORK/state-scale-$placement"
        setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev --port "${port[$placement]}" \
            --inspector-port "$(( ${port[$placement]} + 600 ))" --var "ROOM_SETTINGS:${settings[$placement]}" \
            --persist-to "$WORK/state-scale-$placement" >"$WORK/scale-$placement.log" 2>&1 &
        group[$placement]=$!; PIDS_TO_STOP+=("${group[$placement]}")
    done
    for placement in direct sharded; do wait_http "http://127.0.0.1:${port[$placement]}/" 90; done
    scale_pids() { group_pids "${group[direct]}"; group_pids "${group[sharded]}"; }
    scale_quiet() { wait_until_idle "scale_pids_joined"; }
    scale_pids_joined() { scale_pids | paste -sd, -; }

    local members room url tags
    for placement in direct sharded; do
        for members in "${members_list[@]}"; do
            tags="{\"placement\": \"$placement\", \"members\": $members, \"room_settings\": ${settings[$placement]}}"
            # Each member is a socket here and one in the server; the publisher, stats reads
            # and the processes' own files need a few more.
            if [ $(( members + 100 )) -gt "$limit" ]; then
                step "scale: skipping $members members: the open-file limit is $limit"
                echo "{\"scenario\": \"scale\", \"members\": $members, \"skipped\": \"the open-file limit is $limit\"}" \
                    | record "$tags" "$SCALE_TAGS"
                continue
            fi
            room="scale-$members-$RANDOM"
            url="ws://127.0.0.1:${port[$placement]}/rooms/$room"
            scale_quiet
            step "scale, $placement: 1 publisher -> $members members of one room, unpaced then paced"
            scale_run "scale-$placement-$members" "$tags" scale --flavor stomp --url "$url" --destination /topic/chat \
                --members "$members" --parallel "$parallel" \
                --messages "$(( unpaced_deliveries / members > 5 ? unpaced_deliveries / members : 5 ))" \
                --paced-rate "$(( paced_deliveries / members > 1 ? paced_deliveries / members : 1 ))" \
                --paced-seconds "$paced_seconds" --timeout 180 \
                --stats "http://127.0.0.1:${port[$placement]}/rooms/$room/stats" \
                --pids "$(group_pids "${group[$placement]}")"
        done
    done

    local variant
    for variant in before after; do
        placement=direct; [ "$variant" = after ] && placement=sharded
        scale_quiet
        step "seed app, $variant ($placement server): 100 chat rooms x 10 members on /ws-stomp, 2 msg/s each, 10 s"
        scale_run "seed-app-$variant" "{\"scenario\": \"seed-app\", \"variant\": \"$variant\", \"placement\": \"$placement\", \"room_settings\": ${settings[$placement]}}" \
            rooms --flavor stomp --url "ws://127.0.0.1:${port[$placement]}/ws-stomp" \
            --destination "/sub/chat/room/{room}" --send-to /pub/chat/message --body json \
            --rooms 100 --members 10 --rate 2 --seconds 10 \
            --stats "http://127.0.0.1:${port[$placement]}/rooms/ws-stomp/stats,http://127.0.0.1:${port[$placement]}/rooms/bench-0/stats" \
            --pids "$(group_pids "${group[$placement]}")"
    done

    for placement in direct sharded; do
        kill -TERM -- "-${group[$placement]}" 2>/dev/null || kill -TERM "${group[$placement]}" 2>/dev/null || true
    done
}
