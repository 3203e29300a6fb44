"""A line PLC of another make, served by Python asyncua (an implementation nobody here wrote).

Usage: asyncua_line.py PORT LAYOUT        LAYOUT: handshake | fifo

Its node layout is unlike sim-line's on purpose: its own namespace URI, numeric NodeIds,
option codes as a string array, other types and other names.

- handshake: SeqNr Int32 (i=1001), VehicleId String (i=1002), TypeCode String (i=1003),
  OptionList String[] (i=1004), Strobe UInt16 (i=1005) stepped after the fields are written,
  AckSeqNr Int32 (i=1006, written by the client with the sequence number; the PLC clears it
  to -1 when it presents the next record), HandshakeTimeout Boolean (i=1007, after 1 s).
- fifo: 5 slots, OLDEST first, slot k at i=2000+10k: SeqText String ("0042") +0,
  VehicleId +1, TypeCode +2, OptionList String[] +3; NewestSeq UInt32 (i=2100).
- both: LineRunning Int16 1/0 (i=1010), StopText String (i=1011).

Commands on stdin, one JSON object per line:
  {"broadcast": {"seq": 1, "vin": "...", "model": "...", "options": ["..."]}}
  {"running": false, "reason": "andon"}
Events on stdout, one JSON object per line: {"listening": PORT}, {"acked": SEQ}.
"""

import asyncio
import json
import sys

from asyncua import Server, ua

NS_URI = "urn:example:other-plc:body-shop"
SLOTS = 5
ACK_TIMEOUT_S = 1.0


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


async def variable(parent, ns, ident, name, value, vtype):
    return await parent.add_variable(ua.NodeId(ident, ns), name, ua.Variant(value, vtype))


async def main() -> None:
    port, layout = int(sys.argv[1]), sys.argv[2]
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/plc/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace(NS_URI)
    plc = await server.nodes.objects.add_object(ua.NodeId(1000, ns), "BodyShopPLC")
    running = await variable(plc, ns, 1010, "LineRunning", 1, ua.VariantType.Int16)
    stop_text = await variable(plc, ns, 1011, "StopText", "", ua.VariantType.String)

    if layout == "handshake":
        seq = await variable(plc, ns, 1001, "SeqNr", 0, ua.VariantType.Int32)
        vin = await variable(plc, ns, 1002, "VehicleId", "", ua.VariantType.String)
        model = await variable(plc, ns, 1003, "TypeCode", "", ua.VariantType.String)
        options = await variable(plc, ns, 1004, "OptionList", [], ua.VariantType.String)
        strobe = await variable(plc, ns, 1005, "Strobe", 0, ua.VariantType.UInt16)
        ack = await variable(plc, ns, 1006, "AckSeqNr", -1, ua.VariantType.Int32)
        timeout = await variable(plc, ns, 1007, "HandshakeTimeout", False, ua.VariantType.Boolean)
        await ack.set_writable()
        fields = (seq, vin, model, options, strobe, ack, timeout)
    else:
        slots = []
        for k in range(SLOTS):
            base = 2000 + 10 * k
            slot = await plc.add_object(ua.NodeId(base + 9, ns), f"Slot{k}")
            slots.append((
                await variable(slot, ns, base, "SeqText", "", ua.VariantType.String),
                await variable(slot, ns, base + 1, "VehicleId", "", ua.VariantType.String),
                await variable(slot, ns, base + 2, "TypeCode", "", ua.VariantType.String),
                await variable(slot, ns, base + 3, "OptionList", [], ua.VariantType.String),
            ))
        newest = await variable(plc, ns, 2100, "NewestSeq", 0, ua.VariantType.UInt32)
        fifo: list[dict] = []

    queue: asyncio.Queue = asyncio.Queue()

    async def present(record: dict, counter: int) -> None:
        seq, vin, model, options, strobe, ack, _ = fields
        await ack.write_value(ua.Variant(-1, ua.VariantType.Int32))
        await seq.write_value(ua.Variant(record["seq"], ua.VariantType.Int32))
        await vin.write_value(ua.Variant(record["vin"], ua.VariantType.String))
        await model.write_value(ua.Variant(record["model"], ua.VariantType.String))
        await options.write_value(ua.Variant(record["options"], ua.VariantType.String))
        await strobe.write_value(ua.Variant(counter % 65536, ua.VariantType.UInt16))

    async def handshake() -> None:
        seq, _, _, _, _, ack, timeout = fields
        counter = 0
        while True:
            record = await queue.get()
            counter += 1
            await present(record, counter)
            waited = 0.0
            while await ack.read_value() != record["seq"]:
                await asyncio.sleep(0.005)
                waited += 0.005
                if waited >= ACK_TIMEOUT_S and not await timeout.read_value():
                    await timeout.write_value(True)
            await timeout.write_value(False)
            emit({"acked": record["seq"]})

    async def push(record: dict) -> None:
        fifo.append(record)
        del fifo[:-SLOTS]
        for k, (s, v, m, o) in enumerate(slots):
            r = fifo[k] if k < len(fifo) else None
            await s.write_value(ua.Variant(f"{r['seq']:04d}" if r else "", ua.VariantType.String))
            await v.write_value(ua.Variant(r["vin"] if r else "", ua.VariantType.String))
            await m.write_value(ua.Variant(r["model"] if r else "", ua.VariantType.String))
            await o.write_value(ua.Variant(r["options"] if r else [], ua.VariantType.String))
        await newest.write_value(ua.Variant(record["seq"], ua.VariantType.UInt32))

    async def commands() -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            if "broadcast" in command:
                if layout == "handshake":
                    await queue.put(command["broadcast"])
                else:
                    await push(command["broadcast"])
            if "running" in command:
                await stop_text.write_value(ua.Variant(command.get("reason", ""), ua.VariantType.String))
                await running.write_value(ua.Variant(int(command["running"]), ua.VariantType.Int16))

    async with server:
        emit({"listening": port})
        tasks = [asyncio.create_task(commands())]
        if layout == "handshake":
            tasks.append(asyncio.create_task(handshake()))
        # Ends when stdin closes: the test that started us is gone.
        await tasks[0]


if __name__ == "__main__":
    asyncio.run(main())
