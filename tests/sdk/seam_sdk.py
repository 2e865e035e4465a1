"""Drives Seam's official Python SDK (`seam` on PyPI) against the gateway.

Run by tests/it/seam_sdk.rs with PYTHONPATH pointing at the pinned install.
Prints one JSON line per scenario; the Rust test asserts on them together
with what the stand-in vendor received. Reads:
  SEAM_SDK_TEST_ENDPOINT     the gateway's Seam base URL (…/seam)
  SEAM_SDK_TEST_OFFICER_KEY  API key of a configured privacy officer
  SEAM_SDK_TEST_UNKNOWN_KEY  API key no caller is configured with
  SEAM_SDK_TEST_OFFICER_PAT  personal access token of a privacy officer
"""

import json
import os
import sys
from importlib.metadata import version

from seam import Seam, SeamHttpApiError, SeamInvalidOptionsError

ENDPOINT = os.environ["SEAM_SDK_TEST_ENDPOINT"]
CUSTOMER_KEYS = ["customer_a", "customer_b"]
USER_KEYS = ["user_1"]


def client(last_response, **auth):
    """A Seam client whose every response head is kept for the report.

    `httpx_options` is the SDK's documented pass-through to httpx.Client;
    the hook only reads headers, so the SDK's own error handling is intact.
    """

    def keep(response):
        last_response["headers"] = dict(response.headers)

    return Seam(
        endpoint=ENDPOINT,
        httpx_options={"event_hooks": {"response": [keep]}},
        **auth,
    )


def report(scenario, last_response, error=None, **extra):
    headers = last_response.get("headers", {})
    line = {
        "sdk": "python",
        "sdk_version": version("seam"),
        "scenario": scenario,
        "outcome": "ok",
        "x_request_id": headers.get("x-request-id"),
        "x_erasure_decision": headers.get("x-erasure-decision"),
        "content_type": headers.get("content-type"),
    }
    if error is not None:
        line.update(
            {
                "outcome": "api_error"
                if isinstance(error, SeamHttpApiError)
                else "other_error",
                "error_class": f"{type(error).__module__}.{type(error).__qualname__}",
                "message": str(error),
                "status": getattr(error, "status_code", None),
                "error_type": getattr(error, "code", None),
                "request_id": getattr(error, "request_id", None),
            }
        )
        # A raw httpx error (the SDK did not recognise the body) carries
        # the response: show it, so a failure says what the gateway sent.
        response = getattr(error, "response", None)
        if response is not None:
            line["status"] = response.status_code
            line["raw_body"] = response.text[:500]
    line.update(extra)
    print(json.dumps(line), flush=True)


def delete_data(scenario, **auth):
    last = {}
    try:
        seam = client(last, **auth)
        result = seam.customers.delete_data(
            customer_keys=CUSTOMER_KEYS, user_keys=USER_KEYS
        )
    except Exception as error:  # noqa: BLE001 - every failure is reported
        report(scenario, last, error)
        return
    report(scenario, last, result=repr(result))


def main():
    delete_data("allowed", api_key=os.environ["SEAM_SDK_TEST_OFFICER_KEY"])
    delete_data("unknown_api_key", api_key=os.environ["SEAM_SDK_TEST_UNKNOWN_KEY"])

    # The Python SDK does not let a personal access token reach a workspace
    # route without a workspace: Seam(personal_access_token=…) without
    # workspace_id raises SeamInvalidOptionsError before any request, and
    # SeamWithoutWorkspace exposes only `workspaces`. Report that refusal so
    # the test proves it instead of skipping silently.
    try:
        Seam(
            endpoint=ENDPOINT,
            personal_access_token=os.environ["SEAM_SDK_TEST_OFFICER_PAT"],
        )
    except SeamInvalidOptionsError as error:
        print(
            json.dumps(
                {
                    "sdk": "python",
                    "scenario": "pat_without_workspace",
                    "outcome": "sdk_refused",
                    "error_class": f"{type(error).__module__}.{type(error).__qualname__}",
                    "message": str(error),
                }
            ),
            flush=True,
        )
    else:
        delete_data(
            "pat_without_workspace",
            personal_access_token=os.environ["SEAM_SDK_TEST_OFFICER_PAT"],
        )


if __name__ == "__main__":
    main()
    sys.exit(0)
