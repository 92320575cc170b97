"""An audit trail verifier written from docs/AUDIT.md alone, for a SQLite audit store.

It exists so that the document cannot drift from the code: the test
`audit_trust::a_verifier_written_from_the_document_agrees` runs it beside `confidant audit
verify` on real trails, intact and tampered, and requires the same verdict and the same seq.
It follows the page section by section and uses nothing of Confidant's code.

Usage:
    audit_verifier.py --db audit.db --checkpoints DIR --trusted-key HEX [--trusted-key HEX ...]
                      [--local NODE_ID ...]

Prints `intact <chains>` or `broken <node_id> <seq> <problem>`; exits 0 or 1.
"""

import argparse
import glob
import hashlib
import json
import os
import sqlite3
import struct
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO = b"\x00" * 32


# "Canonical encoding and hash"
def text(value):
    if value is None:
        return b"\x00"
    data = value.encode("utf-8")
    return b"\x01" + struct.pack(">I", len(data)) + data


def entry_hash(prev_hash, row):
    encoded = b"confidant.audit.v1\x00" + text(row["node_id"]) + struct.pack(">q", row["seq"])
    encoded += text(row["event_id"]) + struct.pack(">q", row["at_ms"])
    for field in FIELDS_5_TO_16:
        encoded += text(row[field])
    return hashlib.sha256(prev_hash + encoded).digest()


FIELDS_5_TO_16 = [
    "actor_kind", "actor_user_id", "actor_role", "session_id", "request_id", "source_ip",
    "action", "resource_type", "resource_id", "patient_id", "outcome", "reason",
]


# "Checkpoints": the signed message.
def checkpoint_message(node_id, seq, hash_, at_ms):
    node = node_id.encode("utf-8")
    return (b"confidant.audit.checkpoint.v1\x00" + struct.pack(">I", len(node)) + node
            + struct.pack(">q", seq) + hash_ + struct.pack(">q", at_ms))


def signed_by_trusted(keys, checkpoint):
    message = checkpoint_message(checkpoint["node_id"], checkpoint["seq"], checkpoint["hash"],
                                 checkpoint["at_ms"])
    for key in keys:
        try:
            key.verify(checkpoint["signature"], message)
            return True
        except InvalidSignature:
            pass
    return False


class Broken(Exception):
    def __init__(self, node_id, seq, problem):
        super().__init__(f"{node_id} {seq} {problem}")
        self.node_id, self.seq, self.problem = node_id, seq, problem


def read_checkpoint_files(directory):
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "*.checkpoints"))):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                value = json.loads(line)
                found.append({
                    "node_id": value["node_id"], "seq": value["seq"], "at_ms": value["at_ms"],
                    "hash": bytes.fromhex(value["hash"]), "signature": bytes.fromhex(value["signature"]),
                })
    return found


def verify(db_path, checkpoint_dir, trusted, local):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row

    # Step 1: the checkpoints (table, then files).
    table = [dict(r) for r in db.execute(
        "SELECT node_id, seq, hash, at_ms, signature FROM audit_checkpoints ORDER BY node_id, seq")]
    files = read_checkpoint_files(checkpoint_dir)

    # Newest purge anchor per chain ("Table audit_purges").
    anchors = {}
    for row in db.execute("SELECT node_id, up_to_seq, hash, at_ms, signature FROM audit_purges "
                          "ORDER BY node_id, up_to_seq"):
        anchors[row["node_id"]] = {"node_id": row["node_id"], "seq": row["up_to_seq"],
                                   "hash": row["hash"], "at_ms": row["at_ms"], "signature": row["signature"]}

    # Step 2: every chain, entry by entry.
    chains = {}
    nodes = [r[0] for r in db.execute("SELECT DISTINCT node_id FROM audit_entries ORDER BY node_id")]
    for node in nodes:
        last_seq, prev = (anchors[node]["seq"], anchors[node]["hash"]) if node in anchors else (0, ZERO)
        hashes = {}
        for row in db.execute("SELECT * FROM audit_entries WHERE node_id = ? ORDER BY seq", (node,)):
            if row["seq"] != last_seq + 1:
                raise Broken(node, row["seq"], "missing")
            if row["prev_hash"] != prev:
                raise Broken(node, row["seq"], "broken_link")
            if entry_hash(prev, row) != row["hash"]:
                raise Broken(node, row["seq"], "altered")
            last_seq, prev = row["seq"], row["hash"]
            hashes[last_seq] = prev
        chains[node] = (last_seq, hashes)

    # Step 3: anchors, then checkpoints (files, table).
    for anchor in anchors.values():
        if not signed_by_trusted(trusted, anchor):
            raise Broken(anchor["node_id"], anchor["seq"], "untrusted_signature")
    for checkpoint in files + table:
        node, seq = checkpoint["node_id"], checkpoint["seq"]
        if not signed_by_trusted(trusted, checkpoint):
            raise Broken(node, seq, "untrusted_signature")
        if node in anchors and seq <= anchors[node]["seq"]:
            continue
        last_seq, hashes = chains.get(node, (0, {}))
        if last_seq < seq:
            raise Broken(node, last_seq + 1, "truncated")
        if hashes[seq] != checkpoint["hash"]:
            raise Broken(node, seq, "checkpoint_mismatch")

    # Step 4: files and table hold the same checkpoints, seals in progress aside.
    now_ms = int(time.time() * 1000)
    filed = {c["node_id"] for c in files} | set(local)

    def kept(records):
        return {(c["node_id"], c["seq"]) for c in records
                if c["node_id"] in filed and not (c["node_id"] in anchors and c["seq"] <= anchors[c["node_id"]]["seq"])}

    def newest(records, node):
        return max((c["seq"] for c in records if c["node_id"] == node), default=None)

    def sealing(checkpoint, own, other):
        # The newest of its chain, missing from the other side, signed under 60 s ago.
        beyond = newest(other, checkpoint["node_id"])
        return (checkpoint["seq"] == newest(own, checkpoint["node_id"])
                and (beyond is None or checkpoint["seq"] > beyond)
                and now_ms - checkpoint["at_ms"] < 60_000)

    in_files = kept(c for c in files if not sealing(c, files, table))
    in_table = kept(c for c in table if not sealing(c, table, files))
    all_files, all_table = kept(files), kept(table)
    differences = sorted([(k, "missing_from_file") for k in in_table - all_files]
                         + [(k, "missing_from_table") for k in in_files - all_table])
    if differences:
        (node, seq), problem = differences[0]
        raise Broken(node, seq, problem)
    return len(chains)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--trusted-key", action="append", required=True)
    parser.add_argument("--local", action="append", default=[])
    args = parser.parse_args()
    trusted = [Ed25519PublicKey.from_public_bytes(bytes.fromhex(k)) for k in args.trusted_key]
    try:
        count = verify(args.db, args.checkpoints, trusted, args.local)
    except Broken as broken:
        print(f"broken {broken.node_id} {broken.seq} {broken.problem}")
        return 1
    print(f"intact {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
