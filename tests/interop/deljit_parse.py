"""Reads an EDIFACT interchange with pydifact (a parser Takt shares nothing with) and prints, as
JSON, what a supplier's system would take from it: the envelope's counts and each message's
segments by tag, with the elements as pydifact split them."""

import json
import sys
import warnings

from pydifact.parser import Parser
from pydifact.segmentcollection import Interchange

# pydifact ships no directory for syntax version 3 and says so per segment: not our concern.
warnings.simplefilter("ignore")


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    interchange = Interchange.from_str(text)
    messages = []
    for message in interchange.get_messages():
        segments = [(s.tag, s.elements) for s in message.segments]
        messages.append(
            {
                "type": message.type,
                "reference": message.reference_number,
                "version": message.version,
                "segments": segments,
            }
        )
    # The envelope as written (Interchange crafts its own UNZ and UNT): every segment in order,
    # and for each message the segments from its UNH to its UNT, both included.
    raw = list(Parser().parse(text))
    unz = [s.elements for s in raw if s.tag == "UNZ"]
    unt = []
    counted = 0
    for s in raw:
        if s.tag == "UNH":
            counted = 0
        counted += 1
        if s.tag == "UNT":
            unt.append({"declared": s.elements, "counted": counted})
    print(
        json.dumps(
            {
                "sender": interchange.sender,
                "recipient": interchange.recipient,
                "control_reference": interchange.control_reference,
                "unz": unz[0] if unz else None,
                "unh": sum(1 for s in raw if s.tag == "UNH"),
                "unt": unt,
                "messages": messages,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
