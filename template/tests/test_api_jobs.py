"""The job API: submission, validation, lookup, listing and paging."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.anyio


async def submit(client: httpx.AsyncClient, seconds: float = 0.0) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": seconds}}
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def wait_for_status(client: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    for _ in range(500):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["status"] == status:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {status}: {job}")


async def test_a_submitted_job_is_stored_queued_and_located(client: httpx.AsyncClient) -> None:
    before = REGISTRY.get_sample_value("jobs_submitted_total", {"kind": "sleep"}) or 0.0
    response = await client.post(
        "/api/v1/jobs", json={"kind": "sleep", "payload": {"seconds": 0.01}}
    )
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["kind"] == "sleep"
    assert job["payload"] == {"seconds": 0.01}
    assert job["status"] == "queued"
    assert job["attempts"] == 0
    assert job["result"] is None
    assert job["error"] is None
    assert set(job) == {
        "id",
        "kind",
        "payload",
        "status",
        "attempts",
        "result",
        "error",
        "created_at",
        "updated_at",
    }
    assert REGISTRY.get_sample_value("jobs_submitted_total", {"kind": "sleep"}) == before + 1


async def test_a_job_runs_to_success(client: httpx.AsyncClient) -> None:
    job = await submit(client, 0.05)
    done = await wait_for_status(client, job["id"], "succeeded")
    assert done["attempts"] == 1
    assert done["result"] == {"slept_seconds": 0.05}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "teleport", "payload": {}}, "body.kind"),
        ({"kind": "sleep", "payload": {"seconds": 61}}, "body.payload.seconds"),
        ({"kind": "sleep", "payload": {"seconds": -1}}, "body.payload.seconds"),
        ({"kind": "sleep", "payload": {"seconds": "5"}}, "body.payload.seconds"),
        ({"kind": "sleep", "payload": {}}, "body.payload.seconds"),
        ({"kind": "sleep", "payload": {"seconds": 1, "extra": 1}}, "body.payload.extra"),
        ({"payload": {"seconds": 1}}, "body.kind"),
        ({"kind": "sleep", "payload": [1]}, "body.payload"),
    ],
)
async def test_an_invalid_submission_is_a_422_listing_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [error["field"] for error in problem["errors"]]
    listed = (await client.get("/api/v1/jobs")).json()
    assert listed["items"] == []


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_an_unknown_job_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_malformed_job_id_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/jobs/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.job_id"


async def test_listing_is_newest_first_and_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    submitted = [(await submit(client, 30))["id"] for _ in range(5)]
    first = (await client.get("/api/v1/jobs", params={"limit": 2})).json()
    assert [job["id"] for job in first["items"]] == submitted[::-1][:2]
    second = (
        await client.get("/api/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    third = (
        await client.get("/api/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    seen = [job["id"] for page in (first, second, third) for job in page["items"]]
    assert seen == submitted[::-1]
    assert third["next_cursor"] is None


async def test_listing_filters_by_status(client: httpx.AsyncClient) -> None:
    done = await submit(client, 0)
    await wait_for_status(client, done["id"], "succeeded")
    await submit(client, 30)
    await submit(client, 30)
    await submit(client, 30)  # concurrency is 2: this one stays queued
    succeeded = (await client.get("/api/v1/jobs", params={"status": "succeeded"})).json()
    assert [job["id"] for job in succeeded["items"]] == [done["id"]]
    for status in ("queued", "running", "failed"):
        listed = (await client.get("/api/v1/jobs", params={"status": status})).json()
        assert all(job["status"] == status for job in listed["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"status": "lost"}, "query.status"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
    ],
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
