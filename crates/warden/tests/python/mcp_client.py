"""The official MCP Python SDK (PyPI `mcp`) as an agent calling Warden's MCP endpoint over
Streamable HTTP.

Usage: mcp_client.py <endpoint url> <token> <mode> [json arguments]
  tools                     list the tools, then call each one (ask_user_question waits for
                            the answer the test gives); prints one JSON line of the results
  call <tool> <json args>   one call; prints {"is_error": …, "text": …, "structured": …}
  refused                   initialise and list tools, expecting the server to refuse;
                            prints {"refused": true, "status": …} or {"refused": false}
Exits non-zero on any unexpected failure.
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

url, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]


def result_of(r):
    text = "".join(getattr(c, "text", "") for c in r.content)
    return {"is_error": bool(r.is_error), "text": text, "structured": r.structured_content}


STATUSES = []


async def note_status(response):
    STATUSES.append(response.status_code)


async def session_run(fn):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    http.event_hooks["response"].append(note_status)
    async with http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await fn(session)


async def all_tools(session):
    out = {}
    listed = await session.list_tools()
    out["tools"] = sorted(t.name for t in listed.tools)
    out["create_ticket"] = result_of(
        await session.call_tool(
            "create_ticket",
            {"title": "Flaky login test", "body": "Fails **sometimes**.", "labels": ["ci"]},
        )
    )
    out["search_tickets"] = result_of(await session.call_tool("search_tickets", {"query": "flaky"}))
    number = out["create_ticket"]["structured"]["number"]
    out["get_ticket_details"] = result_of(
        await session.call_tool("get_ticket_details", {"ticket": str(number)})
    )
    out["get_session_details"] = result_of(await session.call_tool("get_session_details", {}))
    out["send_message"] = result_of(
        await session.call_tool("send_message", {"message": "Starting on the login test."})
    )
    out["write_plan"] = result_of(
        await session.call_tool("write_plan", {"content": "1. Reproduce\n2. Fix"})
    )
    out["read_plan"] = result_of(await session.call_tool("read_plan", {}))
    out["ask_user_question"] = result_of(
        await session.call_tool(
            "ask_user_question",
            {"question": "Which database should the test use?", "timeout_seconds": 60},
        )
    )
    return out


def status_of(e):
    """The HTTP status behind an exception the SDK raised, however deeply it is wrapped."""
    seen = [e]
    while seen:
        e = seen.pop()
        response = getattr(e, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return response.status_code
        seen.extend(getattr(e, "exceptions", ()))
        for inner in (e.__cause__, e.__context__):
            if inner is not None:
                seen.append(inner)
    return None


async def one_call(session):
    return result_of(await session.call_tool(sys.argv[4], json.loads(sys.argv[5])))


async def main():
    if mode == "tools":
        out = await session_run(all_tools)
    elif mode == "call":
        out = await session_run(one_call)
    elif mode == "refused":
        try:
            await session_run(lambda s: s.list_tools())
            out = {"refused": False}
        except BaseException as e:  # the SDK raises an exception group from its task group
            refusals = [s for s in STATUSES if s >= 400]
            status = status_of(e) or (refusals[0] if refusals else None)
            out = {"refused": True, "status": status, "error": repr(e)[:300]}
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


asyncio.run(main())
