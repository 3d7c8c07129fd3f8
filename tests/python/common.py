"""What every script here shares: the client configured from the kubeconfig named first on
the command line (with the client's own `config.load_kube_config`, unchanged), results
printed as one JSON line for the Rust test to check, and the shape of an API error."""

import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def connect():
    """Loads the kubeconfig named by the first argument; returns the other arguments."""
    config.load_kube_config(config_file=sys.argv[1])
    return sys.argv[2:]


def emit(value):
    """Prints `value` as one line of JSON, at once (the test may be waiting for it)."""
    print(json.dumps(value), flush=True)


def names(items):
    """The names of a list's items, in the order served."""
    return [item.metadata.name for item in items]


def api_error(call):
    """Calls `call`, which must raise an ApiException: its status, reason and parsed body."""
    try:
        call()
    except ApiException as error:
        return {"status": error.status, "reason": error.reason, "body": json.loads(error.body)}
    raise AssertionError("the call succeeded; an ApiException was expected")


def meta(name, labels=None):
    """A typed V1ObjectMeta."""
    return client.V1ObjectMeta(name=name, labels=labels)
