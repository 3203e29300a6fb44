"""Line PLCs in the layouts other plants use, served by Python asyncua (nobody here wrote it).

Usage: asyncua_plc.py PORT LAYOUT [VARIANT]

Each layout is written after how such PLCs hand over a broadcast, not after Takt:

- arrays newest|oldest: a Siemens-style data block of field arrays, `"DB_Bcast"."Seq"`
  (UInt16[20]), `"DB_Bcast"."VIN"`, `"DB_Bcast"."Model"`, `"DB_Bcast"."Opt"` (String[20], the
  options as one string `SEAT:LTHR-BLK;DRIVE:LHD`), and `"DB_Bcast"."LastSeq"` (UInt16). As a
  shift register (newest: element 0 newest) or filled from element 0 (oldest: once full,
  element 19 newest). String NodeIds with the quotes S7 servers use.
- ring: a TwinCAT-style ring buffer, `MAIN.aSeq` (Int32[16]), `MAIN.aVin`, `MAIN.aModel`,
  `MAIN.aOptions` (String[16], bare codes `P7L WH2` in one string), `MAIN.nWriteIdx` (Int16,
  1-based like the PLC's ARRAY[1..16], pointing at the slot written next) and `MAIN.nCount`
  (UInt32, stepped per record).
- strobe plc|takt: a DataReady handshake, `Bcast.DataReady` and `Bcast.Ack` (Boolean), the
  record in `Bcast.SeqNo` (UInt32), `Bcast.VIN`, `Bcast.Model`, `Bcast.Options` (String[]),
  `Bcast.Timeout` (Boolean). The PLC raises DataReady and waits for Ack. With `plc` it takes
  the Ack itself: drops DataReady and clears Ack. With `takt` (four-phase) it drops DataReady
  and waits for the client to clear Ack. After ACK_TIMEOUT_S without an Ack it raises Timeout,
  drops DataReady, clears Ack, and presents the same record again (a new rising edge).
- counter: a counter handshake whose acknowledgement echoes the sequence number:
  `Bcast.Counter` (UInt16, stepped once per new record), `Bcast.AckSeq` (Int32, the PLC
  clears it to -1 when it presents), the record as above. After ACK_TIMEOUT_S it raises
  Timeout, clears AckSeq and presents the same record again with the same counter value —
  the behaviour that once deadlocked a client that trusted its own memory of the counter.

Commands on stdin, one JSON object per line:
  {"broadcast": {"seq": 1, "vin": "...", "model": "...", "options": "..." or [...]}}
  {"restart": true}     stop the server, keep the PLC's memory, serve again on the same port
  {"late_acks": N}      take the next N acknowledgements as too late: time out and present
                        the record again (an acknowledgement that lost the race with the
                        PLC's timer)
Events on stdout, one JSON object per line: {"listening": PORT}, {"pushed": SEQ},
{"presented": SEQ, "attempt": N}, {"late_ack": SEQ}, {"acked": SEQ}, {"restarted": PORT}.
"""

import asyncio
import json
import sys

from asyncua import Server, ua

NS_URI = "urn:example:plant-b:broadcast"
ARRAY_LEN = {"arrays": 20, "ring": 16}
ACK_TIMEOUT_S = 0.6
REPRESENT_PAUSE_S = 0.1


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


class Memory:
    """The PLC's memory: what survives a restart of its OPC UA server."""

    def __init__(self, layout: str, variant: str):
        self.layout, self.variant = layout, variant
        n = ARRAY_LEN.get(layout, 0)
        self.seq = [0] * n
        self.vin = [""] * n
        self.model = [""] * n
        self.opt = [""] * n
        self.last_seq = 0
        self.filled = 0
        self.write_idx = 1
        self.count = 0


class Plc:
    def __init__(self, port: int, layout: str, variant: str):
        self.port, self.layout, self.variant = port, layout, variant
        self.memory = Memory(layout, variant)
        self.server = None
        self.nodes: dict = {}
        self.lock = asyncio.Lock()
        self.late_acks = 0

    async def serve(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/plant-b/")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(NS_URI)
        objects = server.nodes.objects
        m = self.memory

        async def var(name, value, vtype, writable=False):
            node = await objects.add_variable(ua.NodeId(name, ns), name, ua.Variant(value, vtype))
            if writable:
                await node.set_writable()
            self.nodes[name] = node
            return node

        if self.layout == "arrays":
            await var('"DB_Bcast"."Seq"', m.seq, ua.VariantType.UInt16)
            await var('"DB_Bcast"."VIN"', m.vin, ua.VariantType.String)
            await var('"DB_Bcast"."Model"', m.model, ua.VariantType.String)
            await var('"DB_Bcast"."Opt"', m.opt, ua.VariantType.String)
            await var('"DB_Bcast"."LastSeq"', m.last_seq, ua.VariantType.UInt16)
        elif self.layout == "ring":
            await var("MAIN.aSeq", m.seq, ua.VariantType.Int32)
            await var("MAIN.aVin", m.vin, ua.VariantType.String)
            await var("MAIN.aModel", m.model, ua.VariantType.String)
            await var("MAIN.aOptions", m.opt, ua.VariantType.String)
            await var("MAIN.nWriteIdx", m.write_idx, ua.VariantType.Int16)
            await var("MAIN.nCount", m.count, ua.VariantType.UInt32)
        else:
            await var("Bcast.DataReady", False, ua.VariantType.Boolean)
            await var("Bcast.Ack", False, ua.VariantType.Boolean, writable=True)
            await var("Bcast.Counter", 0, ua.VariantType.UInt16)
            await var("Bcast.AckSeq", -1, ua.VariantType.Int32, writable=True)
            await var("Bcast.SeqNo", 0, ua.VariantType.UInt32)
            await var("Bcast.VIN", "", ua.VariantType.String)
            await var("Bcast.Model", "", ua.VariantType.String)
            await var("Bcast.Options", [], ua.VariantType.String)
            await var("Bcast.Timeout", False, ua.VariantType.Boolean)
        await server.start()
        self.server = server

    async def write(self, name, value, vtype) -> None:
        await self.nodes[name].write_value(ua.Variant(value, vtype))

    async def push(self, record: dict) -> None:
        """A FIFO layout takes one record; nothing waits for the client."""
        m = self.memory
        async with self.lock:
            if self.layout == "arrays":
                n = ARRAY_LEN["arrays"]
                fields = (record["seq"] % 65536, record["vin"], record["model"], record["options"])
                columns = (m.seq, m.vin, m.model, m.opt)
                if self.variant == "newest":
                    for column, value in zip(columns, fields):
                        column.insert(0, value)
                        del column[n:]
                else:
                    for column, value in zip(columns, fields):
                        if m.filled < n:
                            column[m.filled] = value
                        else:
                            column.pop(0)
                            column.append(value)
                    m.filled = min(m.filled + 1, n)
                m.last_seq = record["seq"] % 65536
                await self.write('"DB_Bcast"."Seq"', m.seq, ua.VariantType.UInt16)
                await self.write('"DB_Bcast"."VIN"', m.vin, ua.VariantType.String)
                await self.write('"DB_Bcast"."Model"', m.model, ua.VariantType.String)
                await self.write('"DB_Bcast"."Opt"', m.opt, ua.VariantType.String)
                await self.write('"DB_Bcast"."LastSeq"', m.last_seq, ua.VariantType.UInt16)
            else:
                n = ARRAY_LEN["ring"]
                i = m.write_idx - 1
                m.seq[i], m.vin[i], m.model[i], m.opt[i] = (
                    record["seq"], record["vin"], record["model"], record["options"])
                m.write_idx = m.write_idx % n + 1
                m.count += 1
                await self.write("MAIN.aSeq", m.seq, ua.VariantType.Int32)
                await self.write("MAIN.aVin", m.vin, ua.VariantType.String)
                await self.write("MAIN.aModel", m.model, ua.VariantType.String)
                await self.write("MAIN.aOptions", m.opt, ua.VariantType.String)
                await self.write("MAIN.nWriteIdx", m.write_idx, ua.VariantType.Int16)
                await self.write("MAIN.nCount", m.count, ua.VariantType.UInt32)
        emit({"pushed": record["seq"]})

    async def read(self, name):
        return await self.nodes[name].read_value()

    async def acked(self, record: dict) -> bool:
        if self.layout == "counter":
            return await self.read("Bcast.AckSeq") == record["seq"]
        return await self.read("Bcast.Ack")

    async def hand_over(self, record: dict) -> None:
        """The handshake for one record, presented again after every timeout."""
        attempt = 0
        if self.layout == "counter":
            self.memory.count = (self.memory.count + 1) % 65536
        while True:
            attempt += 1
            if self.layout == "counter":
                await self.write("Bcast.AckSeq", -1, ua.VariantType.Int32)
            await self.write("Bcast.SeqNo", record["seq"], ua.VariantType.UInt32)
            await self.write("Bcast.VIN", record["vin"], ua.VariantType.String)
            await self.write("Bcast.Model", record["model"], ua.VariantType.String)
            await self.write("Bcast.Options", record["options"], ua.VariantType.String)
            if self.layout == "counter":
                await self.write("Bcast.Counter", self.memory.count, ua.VariantType.UInt16)
            else:
                await self.write("Bcast.DataReady", True, ua.VariantType.Boolean)
            emit({"presented": record["seq"], "attempt": attempt})
            waited = 0.0
            while not await self.acked(record) and waited < ACK_TIMEOUT_S:
                await asyncio.sleep(0.005)
                waited += 0.005
            if await self.acked(record):
                if self.late_acks == 0:
                    break
                # The acknowledgement came after this scan already decided it was too late.
                self.late_acks -= 1
                emit({"late_ack": record["seq"]})
            # No acknowledgement in time: flag it, take the record back, present it again.
            await self.write("Bcast.Timeout", True, ua.VariantType.Boolean)
            if self.layout != "counter":
                await self.write("Bcast.DataReady", False, ua.VariantType.Boolean)
                await self.write("Bcast.Ack", False, ua.VariantType.Boolean)
            await asyncio.sleep(REPRESENT_PAUSE_S)
        await self.write("Bcast.Timeout", False, ua.VariantType.Boolean)
        if self.layout == "strobe":
            await self.write("Bcast.DataReady", False, ua.VariantType.Boolean)
            if self.variant == "plc":
                await self.write("Bcast.Ack", False, ua.VariantType.Boolean)
            else:
                while await self.read("Bcast.Ack"):
                    await asyncio.sleep(0.005)
        emit({"acked": record["seq"]})

    async def restart(self) -> None:
        async with self.lock:
            await self.server.stop()
            await asyncio.sleep(0.3)
            await self.serve()
        emit({"restarted": self.port})


async def main() -> None:
    port, layout = int(sys.argv[1]), sys.argv[2]
    variant = sys.argv[3] if len(sys.argv) > 3 else ""
    plc = Plc(port, layout, variant)
    await plc.serve()
    emit({"listening": port})
    queue: asyncio.Queue = asyncio.Queue()

    async def handshake() -> None:
        while True:
            await plc.hand_over(await queue.get())

    handshakes = ("strobe", "counter")
    if layout in handshakes:
        asyncio.create_task(handshake())
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break  # the test that started us is gone
        command = json.loads(line)
        if "broadcast" in command:
            if layout in handshakes:
                await queue.put(command["broadcast"])
            else:
                await plc.push(command["broadcast"])
        if "late_acks" in command:
            plc.late_acks = command["late_acks"]
        if command.get("restart"):
            await plc.restart()
    await plc.server.stop()


if __name__ == "__main__":
    asyncio.run(main())
