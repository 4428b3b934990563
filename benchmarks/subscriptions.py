"""Live events at 1,000 subscribers, and what the server adds to segmenting images.

One Dask LocalCluster (2 worker processes, 1 thread each) is started in this process before anything is
timed and serves both paths below, so cluster start-up is in neither measurement. The server is the real
``spheroseg server serve --port 0`` process, production settings, SQLite and blobs in a temporary folder,
``SPHEROSEG_SCHEDULER`` pointing at that cluster (``spheroseg_testing/server.py`` starts it).

Subscriptions: N ``projectEvents`` subscriptions on one project, one per WebSocket connection, opened by 4
child processes (so the client's JSON parsing and WebSocket frames do not share one core with the
measurements; their CPU use is reported) with the plain ``websockets`` library speaking graphql-transport-ws
by hand: ``connection_init`` with the token, ``subscribe``, then ``next`` messages. Once the server's
``spheroseg_active_subscriptions`` gauge (``/metrics``) shows them all, this process sends ``setReview``
mutations on one image, one at a time, 200 ms apart after each answer; each publishes one
``review_changed`` event to every subscriber. Latency of a delivery = the subscriber's clock when the
message is read - the event's ``at`` (set when the server publishes it; same machine, same clock). p50,
p99 and max are over every delivery; delivered is compared with subscribers x events, and ``missed`` flags
are counted. 100 subscribers are measured first, the same way, for comparison. Server memory is VmRSS of
the server process before any subscriber, with each set open, and after all have closed; server CPU per
event is its user + system time over the publishing phase divided by the events.

Throughput: M distinct synthetic brightfield scenes (``cluster.synthetic``, 512 x 512, native bit depth,
zlib TIFF; a fresh set of seeds for every repeat, so neither path meets an image, a blob or a result it has
seen) segmented with ``cluster.methods.DEFAULT_METHOD`` two ways: ``spheroseg segment <folder> --out ...
--scheduler <address> --method <m> --formats csv`` (wall time of the whole command, interpreter start and
CSV included), and through the server (wall time from the upload POST of all the files to the client
reading status DONE on the ``jobProgress`` subscription; the job's own images/s, from its first task's
start to its end, is also given). Both paths are warmed once on 8 other images (model weights loaded in
the workers, the server's cluster client connected); then each repeat runs both paths, alternating which
goes first, and medians are reported. Ratio = server images/s / direct images/s. Also given: the start-up
of ``spheroseg segment --help`` (interpreter and imports, paid by every direct run) and the server's CPU
time per server run (on a machine whose cores the workers fill, it is taken from them).

The machine is shared: absolute figures are noisy (load average recorded), compare those of the same run.

Prints a table and writes benchmarks/results/subscriptions.json.

Usage: python benchmarks/subscriptions.py [--subscribers 1000] [--events 40] [--images 48] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # spheroseg_testing (the service starters) lives at the root

from cluster.methods import DEFAULT_METHOD  # noqa: E402
from cluster.synthetic import generate_scene  # noqa: E402
from spheroseg_testing import SPHEROSEG, ServerProcess, graphql, login, start_server  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PASSWORD = "a long enough benchmark password"
CHILDREN = 4
OPEN_BATCH = 50
SPACING_S = 0.2
EVENTS = "subscription($p: Int!) { projectEvents(projectId: $p) { kind at missed data } }"
PROGRESS = "subscription($id: Int!) { jobProgress(jobId: $id) { status done failed total } }"
REVIEW = """mutation($i: Int!, $v: Int!, $s: ReviewStatus!, $c: String) {
  setReview(images: [{imageId: $i, version: $v}], status: $s, comment: $c) { __typename } }"""
VERSION = "query($i: Int!) { image(id: $i) { segmentation { version } } }"
SEGMENT = """mutation($p: Int!, $m: String!) { segmentImages(input: {projectId: $p, method: $m}) {
  __typename ... on JobStarted { job { id total } } } }"""
JOB = "query($id: Int!) { job(id: $id) { status done failed total imagesPerSecond startedAt finishedAt } }"
CREATE = """mutation($n: String!) { createProject(input: {name: $n}) {
  ... on ProjectSuccess { project { id } } } }"""


# -- the subscriber child process ----------------------------------------------------------------------------


async def _open_one(config: dict[str, Any]) -> Any:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    ws = await connect(
        config["ws_url"],
        subprotocols=[Subprotocol("graphql-transport-ws")],
        open_timeout=60,
        ping_interval=None,
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {config['token']}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"connection refused: {ack}")
    payload = {"query": EVENTS, "variables": {"p": config["project_id"]}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def _read(ws: Any, seen: list[tuple[str, float, bool]]) -> None:
    """Every ``next`` message: (event id from the comment, latency in ms, missed)."""
    with contextlib.suppress(Exception):  # the connection closes when the run ends
        async for message in ws:
            received = time.time()
            body = json.loads(message)
            if body.get("type") != "next":
                continue
            event = body["payload"]["data"]["projectEvents"]
            at = dt.datetime.fromisoformat(event["at"]).timestamp()
            seen.append((str(event["data"].get("comment")), (received - at) * 1000, bool(event["missed"])))


async def _subscriber_child() -> None:
    """Open ``count`` subscriptions, say so, read until told to stop, then report what each one read."""
    config = json.loads(sys.stdin.readline())
    connections: list[Any] = []
    errors: list[str] = []
    for start in range(0, config["count"], OPEN_BATCH):
        batch = min(OPEN_BATCH, config["count"] - start)
        for result in await asyncio.gather(
            *(_open_one(config) for _ in range(batch)), return_exceptions=True
        ):
            if isinstance(result, BaseException):
                errors.append(repr(result)[:200])
            else:
                connections.append(result)
    seen: list[list[tuple[str, float, bool]]] = [[] for _ in connections]
    readers = [asyncio.create_task(_read(ws, s)) for ws, s in zip(connections, seen, strict=True)]
    print(json.dumps({"open": len(connections), "errors": errors}), flush=True)
    cpu, wall = sum(os.times()[:2]), time.perf_counter()  # from here to "stop": the publishing phase
    loop = asyncio.get_running_loop()
    expected = int(await loop.run_in_executor(None, sys.stdin.readline))
    cpu, wall = sum(os.times()[:2]) - cpu, time.perf_counter() - wall
    deadline = time.monotonic() + 15
    while any(len(s) < expected for s in seen) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    for reader in readers:
        reader.cancel()
    print(json.dumps({"seen": [d for s in seen for d in s], "cpu_s": cpu, "wall_s": wall}), flush=True)


# -- subscribers, measured from here -------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1)) / 1024


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def active_subscriptions(server: ServerProcess) -> int:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    match = re.search(r"^spheroseg_active_subscriptions (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else -1


def open_subscribers(server: ServerProcess, token: str, project_id: int, count: int) -> list[Any]:
    before = active_subscriptions(server)
    children = []
    for index in range(CHILDREN):
        share = count // CHILDREN + (index < count % CHILDREN)
        child = subprocess.Popen(
            [sys.executable, __file__, "--subscriber-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        config = {"ws_url": server.ws_url, "token": token, "project_id": project_id, "count": share}
        child.stdin.write(json.dumps(config) + "\n")
        child.stdin.flush()
        children.append(child)
    opened = [json.loads(child.stdout.readline()) for child in children if child.stdout is not None]
    errors = [e for o in opened for e in o["errors"]]
    if sum(o["open"] for o in opened) != count:
        raise RuntimeError(f"opened {sum(o['open'] for o in opened)} of {count}: {errors[:3]}")
    deadline = time.monotonic() + 60
    while active_subscriptions(server) < before + count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server shows {active_subscriptions(server) - before} of {count}")
        time.sleep(0.2)
    return children


def publish(server: ServerProcess, token: str, image_id: int, events: int) -> list[float]:
    """``events`` setReview mutations, one at a time, SPACING_S apart; their round trips in ms."""
    headers = {"Authorization": f"Bearer {token}"}
    round_trips = []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        seen = client.post("/graphql", json={"query": VERSION, "variables": {"i": image_id}}).json()
        version = (seen["data"]["image"]["segmentation"] or {"version": 0})["version"]
        for index in range(events):
            status = "NEEDS_FIX" if index % 2 else "REJECTED"
            variables = {"i": image_id, "v": version, "s": status, "c": f"e{index}"}
            start = time.perf_counter()
            body = client.post("/graphql", json={"query": REVIEW, "variables": variables}).json()
            round_trips.append((time.perf_counter() - start) * 1000)
            if body.get("errors") or body["data"]["setReview"]["__typename"] != "ReviewSetSuccess":
                raise RuntimeError(f"setReview failed: {body}")
            time.sleep(SPACING_S)
    return round_trips


def measure_subscribers(
    server: ServerProcess, token: str, project_id: int, image_id: int, count: int, events: int
) -> dict[str, Any]:
    pid = server.process.pid
    children = open_subscribers(server, token, project_id, count)
    rss_open = rss_mib(pid)
    cpu = cpu_s(pid)
    round_trips = publish(server, token, image_id, events)
    server_cpu = cpu_s(pid) - cpu
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{events}\n")
        child.stdin.flush()
    reports = [json.loads(child.stdout.readline()) for child in children if child.stdout is not None]
    for child in children:
        child.wait(timeout=60)
    seen = [d for r in reports for d in r["seen"]]
    wanted = {f"e{i}" for i in range(events)}
    ms = sorted(latency for name, latency, _ in seen if name in wanted)
    return {
        "subscribers": count,
        "events": events,
        "expected_deliveries": count * events,
        "delivered": len(ms),
        "missed_flags": sum(missed for _, _, missed in seen),
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "max_ms": ms[-1],
        "server_rss_open_mib": rss_open,
        "server_cpu_ms_per_event": server_cpu * 1000 / events,
        "mutation_round_trip_ms_median": statistics.median(round_trips),
        "client_cpu_share": [r["cpu_s"] / r["wall_s"] for r in reports],
    }


# -- throughput ----------------------------------------------------------------------------------------------


def write_images(folder: Path, seeds: range) -> int:
    folder.mkdir(parents=True)
    size = 0
    for seed in seeds:
        scene = generate_scene(seed, (512, 512))
        path = folder / f"well_{seed:05d}.tif"
        tifffile.imwrite(path, np.asarray(scene.image), compression="zlib")
        size += path.stat().st_size
    return size


def run_direct(folder: Path, out: Path, scheduler: str, method: str) -> dict[str, Any]:
    command = [SPHEROSEG, "segment", str(folder), "--out", str(out), "--scheduler", scheduler]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--method", method, "--formats", "csv"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"spheroseg segment failed: {done.stderr[-2000:]}")
    images = len(list(folder.iterdir()))
    return {"seconds": seconds, "images_per_s": images / seconds}


async def _follow_job(ws_url: str, token: str, job_id: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        await asyncio.wait_for(ws.recv(), 30)
        payload = {"query": PROGRESS, "variables": {"id": job_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        async with asyncio.timeout(600):
            async for message in ws:
                body = json.loads(message)
                if body.get("type") != "next":
                    raise RuntimeError(f"job progress ended without DONE: {body}")
                progress: dict[str, Any] = body["payload"]["data"]["jobProgress"]
                if progress["status"] in ("DONE", "CANCELLED"):
                    return progress
    raise RuntimeError("the job progress subscription closed early")


def run_server(server: ServerProcess, token: str, folder: Path, method: str, name: str) -> dict[str, Any]:
    project_id = graphql(server.url, token, CREATE, n=name)["createProject"]["project"]["id"]
    files = sorted(folder.iterdir())
    parts = [("files", (path.name, path.read_bytes(), "image/tiff")) for path in files]
    cpu = cpu_s(server.process.pid)
    start = time.perf_counter()
    response = httpx.post(
        f"{server.url}/api/projects/{project_id}/images",
        files=parts,
        headers={"Authorization": f"Bearer {token}"},
        timeout=300,
    )
    if response.status_code != 200 or response.json()["accepted"] != len(files):
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
    uploaded = time.perf_counter()
    started = graphql(server.url, token, SEGMENT, p=project_id, m=method)["segmentImages"]
    if started["__typename"] != "JobStarted":
        raise RuntimeError(f"segmentImages: {started}")
    job_id = started["job"]["id"]
    final = asyncio.run(_follow_job(server.ws_url, token, job_id))
    seconds = time.perf_counter() - start
    server_cpu = cpu_s(server.process.pid) - cpu
    job = graphql(server.url, token, JOB, id=job_id)["job"]
    if final["status"] != "DONE" or job["done"] != len(files):
        raise RuntimeError(f"the job did not segment every image: {job}")
    return {
        "seconds": seconds,
        "upload_seconds": uploaded - start,
        "images_per_s": len(files) / seconds,
        "job_images_per_s": job["imagesPerSecond"],
        "server_cpu_s": server_cpu,
    }


def measure_throughput(
    server: ServerProcess, token: str, scheduler: str, root: Path, images: int, repeats: int
) -> dict[str, Any]:
    method = DEFAULT_METHOD
    warm = root / "warm"
    write_images(warm, range(90_000, 90_008))
    run_direct(warm, root / "out-warm", scheduler, method)
    run_server(server, token, warm, method, "warm-up")
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "server": []}
    image_bytes = 0
    for repeat in range(repeats):
        folder = root / f"set{repeat}"
        image_bytes = write_images(folder, range(10_000 * (repeat + 1), 10_000 * (repeat + 1) + images))
        order = ("direct", "server") if repeat % 2 == 0 else ("server", "direct")
        for path in order:
            if path == "direct":
                runs[path].append(run_direct(folder, root / f"out{repeat}", scheduler, method))
            else:
                runs[path].append(run_server(server, token, folder, method, f"throughput {repeat}"))
            print(f"  repeat {repeat}: {path} {runs[path][-1]['images_per_s']:.2f} images/s", flush=True)
    startup = []
    for _ in range(3):  # what every `spheroseg segment` pays before its first image: interpreter and imports
        begin = time.perf_counter()
        subprocess.run([SPHEROSEG, "segment", "--help"], capture_output=True, check=True)
        startup.append(time.perf_counter() - begin)
    direct = statistics.median(r["images_per_s"] for r in runs["direct"])
    direct_seconds = statistics.median(r["seconds"] for r in runs["direct"])
    served = statistics.median(r["images_per_s"] for r in runs["server"])
    return {
        "method": method,
        "images": images,
        "image_mib_per_set": image_bytes / 2**20,
        "repeats": repeats,
        "runs": runs,
        "direct_images_per_s": direct,
        "server_images_per_s": served,
        "server_job_images_per_s": statistics.median(r["job_images_per_s"] for r in runs["server"]),
        "server_upload_seconds": statistics.median(r["upload_seconds"] for r in runs["server"]),
        "cli_startup_seconds": statistics.median(startup),
        "direct_images_per_s_less_startup": images / (direct_seconds - statistics.median(startup)),
        "server_cpu_s_per_run": statistics.median(r["server_cpu_s"] for r in runs["server"]),
        "ratio": served / direct,
    }


# -- the run -------------------------------------------------------------------------------------------------


def server_env(root: Path, scheduler: str, subscribers: int) -> dict[str, str]:
    return {
        "SPHEROSEG_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'bench.sqlite3'}",
        "SPHEROSEG_STORAGE_URL": str(root / "blobs"),
        "SPHEROSEG_SECRET_KEY": "benchmark-secret",
        "SPHEROSEG_ENVIRONMENT": "production",
        "SPHEROSEG_SCHEDULER": scheduler,
        "SPHEROSEG_PASSWORD_TIME_COST": "1",
        "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024",
        "SPHEROSEG_MAX_CONNECTIONS_PER_USER": str(subscribers + 50),
    }


def prepare(server: ServerProcess, env: dict[str, str], root: Path) -> tuple[str, int, int]:
    """A user, a project with one image to review; the token, project id and image id."""
    subprocess.run(
        [SPHEROSEG, "server", "create-user", "ana", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    token = login(server.url, "ana", PASSWORD)
    project_id = graphql(server.url, token, CREATE, n="events")["createProject"]["project"]["id"]
    write_images(root / "events", range(1))
    path = next((root / "events").iterdir())
    response = httpx.post(
        f"{server.url}/api/projects/{project_id}/images",
        files=[("files", (path.name, path.read_bytes(), "image/tiff"))],
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    image_id = int(response.json()["files"][0]["imageId"])
    return token, project_id, image_id


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from distributed import LocalCluster

    report: dict[str, Any] = {}
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        scheduler = cluster.scheduler_address
        env = server_env(root, scheduler, args.subscribers)
        server = start_server(env, root / "server.log")
        try:
            token, project_id, image_id = prepare(server, env, root)
            pid = server.process.pid
            report["server_rss_before_mib"] = rss_mib(pid)
            report["subscriptions"] = []
            for count in (args.small, args.subscribers):
                print(f"== {count} subscribers", flush=True)
                result = measure_subscribers(server, token, project_id, image_id, count, args.events)
                report["subscriptions"].append(result)
                time.sleep(2)
                result["server_rss_after_close_mib"] = rss_mib(pid)
                result["server_subscriptions_after_close"] = active_subscriptions(server)
            report["server_rss_after_mib"] = rss_mib(pid)
            print("== throughput", flush=True)
            report["throughput"] = measure_throughput(
                server, token, scheduler, root, args.images, args.repeats
            )
        finally:
            server.stop()
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"\nprojectEvents delivery ({report['subscriptions'][0]['events']} events, one per 200 ms)")
    print(
        f"{'subscribers':>11}{'delivered':>16}{'missed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'server MiB':>12}{'srv CPU ms/ev':>15}{'mutation ms':>13}{'client CPU':>12}"
    )
    for row in report["subscriptions"]:
        delivered = f"{row['delivered']}/{row['expected_deliveries']}"
        client = f"{max(row['client_cpu_share']):.0%}"
        print(
            f"{row['subscribers']:>11}{delivered:>16}{row['missed_flags']:>8}{row['p50_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}{row['server_rss_open_mib']:>12.1f}"
            f"{row['server_cpu_ms_per_event']:>15.1f}{row['mutation_round_trip_ms_median']:>13.1f}{client:>12}"
        )
    after = ", ".join(
        f"{r['server_rss_after_close_mib']:.1f} MiB after the {r['subscribers']} closed "
        f"({r['server_subscriptions_after_close']} bus subscriptions left)"
        for r in report["subscriptions"]
    )
    print(f"server RSS: {report['server_rss_before_mib']:.1f} MiB before any subscriber, {after}")
    t = report["throughput"]
    print(f"\nThroughput, {t['images']} images 512x512, method {t['method']}, medians of {t['repeats']}")
    print(f"  spheroseg segment (whole command)       {t['direct_images_per_s']:6.2f} images/s")
    print(
        f"  ... less its start-up ({t['cli_startup_seconds']:.1f} s)         "
        f"{t['direct_images_per_s_less_startup']:6.2f} images/s"
    )
    print(
        f"  server: upload -> job done (client)     {t['server_images_per_s']:6.2f} images/s "
        f"(upload {t['server_upload_seconds']:.1f} s, server CPU {t['server_cpu_s_per_run']:.1f} s)"
    )
    print(f"  server: job's own rate (first start)    {t['server_job_images_per_s']:6.2f} images/s")
    print(f"  server/direct ratio                     {t['ratio']:6.2f}")
    goals = ", ".join(f"{goal}: {'met' if ok else 'NOT met'}" for goal, ok in report["goals"].items())
    print(f"\n{goals}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100, help="the smaller subscriber count compared")
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subscriber-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber_child:
        asyncio.run(_subscriber_child())
        return
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_start": os.getloadavg(),
        "cluster": "Dask LocalCluster, 2 worker processes x 1 thread, shared by both paths",
        "subscriber_processes": CHILDREN,
        "note": "Shared machine: absolute figures are noisy; compare those of the same run. Subscribers, "
        "server and Dask workers share the same cores.",
    }
    with tempfile.TemporaryDirectory(prefix="spheroseg-bench-subs-") as tmp:
        report.update(run(args, Path(tmp)))
    big = report["subscriptions"][-1]
    report["goals"] = {
        f"p99_under_250ms_at_{args.subscribers}": big["p99_ms"] < 250,
        "every_event_delivered": all(
            r["delivered"] == r["expected_deliveries"] for r in report["subscriptions"]
        ),
        "server_within_10pct_of_direct": report["throughput"]["ratio"] >= 0.9,
    }
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print_table(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "subscriptions.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote benchmarks/results/subscriptions.json in {report['seconds']} s")


if __name__ == "__main__":
    main()
