#!/usr/bin/env python3
"""Load a gateway over MQTT: messages per second and publish-to-result latency.

Publishes COUNT copies of a payload on TOPIC (with `{i}` replaced by the
message's number, so that each result names its message), keeping at most
WINDOW unanswered, and waits for every result on RESULTS. Prints one JSON
object: the rate the gateway answered at, and the p50/p99 latency from each
publish to its result arriving back at this client.

    python3 benches/mqtt_load.py --port 1883 --payload examples/data/kws/synth_yes_en-us.wav \
        --topic 'sensors/{i}/audio' --results 'results/+/kws' --count 2000 --window 64

With --window 1 it measures latency without queueing; with a larger window
it saturates the gateway. The client sets TCP_NODELAY (see the README on
brokers and Nagle's delay). Needs paho-mqtt (pip install paho-mqtt).
"""

import argparse
import json
import socket
import statistics
import threading
import time

import paho.mqtt.client as mqtt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--payload", required=True)
    ap.add_argument("--topic", required=True, help="with {i} for the message number")
    ap.add_argument("--results", required=True, help="the results' topic filter")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()

    payload = open(args.payload, "rb").read()
    sent_at = {}
    latencies = []
    lock = threading.Condition()
    answered = [0]

    def on_message(_c, _u, m):
        # results/<i>/...: the level that carried the message number.
        try:
            i = int(m.topic.split("/")[1])
        except (IndexError, ValueError):
            return
        now = time.perf_counter()
        with lock:
            t = sent_at.pop(i, None)
            if t is not None:
                if i >= args.warmup:
                    latencies.append((now - t) * 1e3)
                answered[0] += 1
                lock.notify_all()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"load-{time.time_ns()}",
                    protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.max_inflight_messages_set(max(20, args.window))
    c.max_queued_messages_set(0)
    c.connect(args.host, args.port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.loop_start()
    c.subscribe(args.results, qos=1)
    time.sleep(0.5)

    total = args.warmup + args.count
    start = None
    for i in range(total):
        if i == args.warmup:
            with lock:
                lock.wait_for(lambda: answered[0] >= args.warmup, timeout=60)
            start = time.perf_counter()
        with lock:
            if not lock.wait_for(lambda: i - answered[0] < args.window, timeout=60):
                raise SystemExit(f"no answer within 60 s; {answered[0]} of {i} answered")
            sent_at[i] = time.perf_counter()
        c.publish(args.topic.replace("{i}", str(i)), payload, qos=1)
    with lock:
        lock.wait_for(lambda: answered[0] >= total, timeout=60)
    took = time.perf_counter() - start
    c.loop_stop()
    q = statistics.quantiles(latencies, n=100)
    print(json.dumps({
        "messages": args.count,
        "answered": answered[0] - args.warmup,
        "window": args.window,
        "per_s": round(args.count / took, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(q[98], 2),
        "payload_bytes": len(payload),
    }))


if __name__ == "__main__":
    main()
