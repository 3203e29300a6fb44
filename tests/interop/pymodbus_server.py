"""A pymodbus TCP server with a register map unlike sim-line's, for plc-bridge's interop test.

Usage: pymodbus_server.py PORT

- unit 5: a Banner PTL110-style module (plc-bridge profile `banner-ptl110`): 8 positions,
  16 holding registers each (colour, animation, digits at offsets 0, 1, 2); the touch button is
  bit 0 of input register 16 * p. Position 1's button is held down from the start.
- unit 6: generic digital I/O (profile `generic-dio`): 32 coils (4 colour outputs per position),
  8 discrete inputs.
Anything else: pymodbus's own exception answers.
"""

import asyncio
import sys

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def banner(device_id: int) -> SimDevice:
    input_registers = [0] * 128
    input_registers[16] = 0b1  # position 1: button pressed
    return SimDevice(
        id=device_id,
        simdata=(
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=128, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, values=input_registers, datatype=DataType.REGISTERS)],
        ),
    )


def dio(device_id: int) -> SimDevice:
    return SimDevice(
        id=device_id,
        simdata=(
            [SimData(0, count=32, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
        ),
    )


async def main() -> None:
    port = int(sys.argv[1])
    server = ModbusTcpServer([banner(5), dio(6)], address=("127.0.0.1", port))
    print("listening", port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
