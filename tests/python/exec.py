"""Exec with the client's `stream.stream` (a WebSocket speaking `v4.channel.k8s.io`):
arguments NAMESPACE POD. Runs a command that writes to both outputs and exits 3, and one that
reads five bytes of stdin; prints what each wrote and its exit code."""

from kubernetes import client
from kubernetes.stream import stream

from common import connect, emit

namespace, pod = connect()
api = client.CoreV1Api()


def run(command, stdin=None):
    """Runs `command` in the pod, writing `stdin` to it first; its outputs and exit code."""
    response = stream(
        api.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    if stdin is not None:
        response.write_stdin(stdin)
    response.run_forever(timeout=30)
    return {
        "stdout": response.read_stdout(timeout=1),
        "stderr": response.read_stderr(timeout=1),
        "code": response.returncode,
    }


emit(
    {
        "outputs": run(["sh", "-c", "echo out; echo err >&2; exit 3"]),
        "stdin": run(["head", "-c", "5"], stdin="12345 and more"),
    }
)
