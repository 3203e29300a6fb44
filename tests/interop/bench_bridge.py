"""The glue plants write today, as the benchmark's reference: an asyncua subscription on a FIFO
broadcast's push counter, a read of the newest slot, a pymodbus write of the pick light.
No journal, no state, no acknowledgement.

Usage: bench_bridge.py OPCUA_URL NAMESPACE_URI LINE POINT UNITS_PER_MODULE HOST:PORT...

The model code `Mkk` selects station kk: module kk // UNITS_PER_MODULE, unit
kk % UNITS_PER_MODULE + 1; option `X=A` lights position 0, anything else position 1 (the
sim-line register map: colour, digits, blink at 4 * position). Prints `ready` once
subscribed; runs until stdin closes.
"""

import asyncio
import sys

from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

PUBLISHING_MS = 10
GREEN = 1


async def main() -> None:
    url, ns_uri, line, point, per_module = sys.argv[1:6]
    per_module = int(per_module)
    modules = []
    for endpoint in sys.argv[6:]:
        host, port = endpoint.rsplit(":", 1)
        client = AsyncModbusTcpClient(host, port=int(port))
        await client.connect()
        modules.append(client)
    async with Client(url=url) as client:
        ns = await client.get_namespace_index(ns_uri)

        def node(name: str):
            return client.get_node(ua.NodeId(f"{line}.{point}.{name}", ns))

        model, options = node("Fifo[0].Model"), node("Fifo[0].Options")

        class Handler:
            async def datachange_notification(self, _node, _value, _data):
                code, opts = await client.read_values([model, options])
                station = int(code[1:])
                lights = modules[station // per_module]
                unit = station % per_module + 1
                position = 0 if "X=A" in opts else 1
                await lights.write_registers(4 * position, [GREEN, 1, 0], device_id=unit)

        sub = await client.create_subscription(PUBLISHING_MS, Handler())
        await sub.subscribe_data_change(node("Count"), sampling_interval=PUBLISHING_MS)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for client in modules:
        client.close()


asyncio.run(main())
