#!/usr/bin/python3
"""Unit tests of the witness's own Merkle code and canonical encoding.

The vectors are Certificate Transparency's RFC 6962 test vectors as published
in transparency-dev/merkle (testonly/constants.go: LeafInputs, RootHashes;
proof/verify_test.go: inclusionProofs, consistencyProofs, whose leaf numbers
count from 1), reproduced by value.  Run: python3 tools/witness_test.py
"""
import datetime
import hashlib
import importlib.machinery
import importlib.util
import os
import unittest

_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "witness")
_loader = importlib.machinery.SourceFileLoader("witness", _path)
_spec = importlib.util.spec_from_loader("witness", _loader)
w = importlib.util.module_from_spec(_spec)
_loader.exec_module(w)

H = bytes.fromhex
LEAVES = [H(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                         "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [H(x) for x in [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]]
INCLUSION = [  # (leaf index from 0, size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (size1, size2, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]


# a reference tree straight from RFC 6962 2.1 (MTH, PATH, PROOF), for the tests only
def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hs):
    if not hs:
        return w.empty_root()
    if len(hs) == 1:
        return hs[0]
    k = split(len(hs))
    return w.node_hash(mth(hs[:k]), mth(hs[k:]))


def path(m, hs):
    if len(hs) <= 1:
        return []
    k = split(len(hs))
    if m < k:
        return path(m, hs[:k]) + [mth(hs[k:])]
    return path(m - k, hs[k:]) + [mth(hs[:k])]


def subproof(m, hs, flag):
    if m == len(hs):
        return [] if flag else [mth(hs)]
    k = split(len(hs))
    if m <= k:
        return subproof(m, hs[:k], flag) + [mth(hs[k:])]
    return subproof(m - k, hs[k:], False) + [mth(hs[:k])]


class Vectors(unittest.TestCase):
    def setUp(self):
        self.hs = [w.leaf_hash(x) for x in LEAVES]

    def test_roots(self):
        for n in range(0, 9):
            self.assertEqual(mth(self.hs[:n]), ROOTS[n], "size %d" % n)

    def test_inclusion_vectors(self):
        for i, n, proof in INCLUSION:
            proof = [H(p) for p in proof]
            self.assertEqual(path(i, self.hs[:n]), proof)
            self.assertTrue(w.verify_inclusion(i, n, self.hs[i], proof, ROOTS[n]))
            # corrupted: wrong index, size, leaf, root, proof element, length
            self.assertFalse(w.verify_inclusion(i ^ 1, n, self.hs[i], proof, ROOTS[n]))
            self.assertFalse(w.verify_inclusion(i, n * 2, self.hs[i], proof, ROOTS[n]))
            self.assertFalse(w.verify_inclusion(i, n, w.leaf_hash(b"x"), proof, ROOTS[n]))
            self.assertFalse(w.verify_inclusion(i, n, self.hs[i], proof, ROOTS[n - 1]))
            bad = list(proof)
            bad[0] = bytes([bad[0][0] ^ 8]) + bad[0][1:]
            self.assertFalse(w.verify_inclusion(i, n, self.hs[i], bad, ROOTS[n]))
            self.assertFalse(w.verify_inclusion(i, n, self.hs[i], proof[:-1], ROOTS[n]))
            self.assertFalse(w.verify_inclusion(i, n, self.hs[i], proof + [ROOTS[n]], ROOTS[n]))

    def test_consistency_vectors(self):
        for m, n, proof in CONSISTENCY:
            proof = [H(p) for p in proof]
            self.assertEqual(subproof(m, self.hs[:n], True), proof)
            self.assertTrue(w.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof))
            self.assertFalse(w.verify_consistency(m, n, ROOTS[n], ROOTS[m], proof))
            self.assertFalse(w.verify_consistency(m - 1, n, ROOTS[m], ROOTS[n], proof))
            self.assertFalse(w.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1]))
            self.assertFalse(w.verify_consistency(m, n, ROOTS[m], ROOTS[n], []))
            bad = list(proof)
            bad[-1] = bytes([bad[-1][0] ^ 16]) + bad[-1][1:]
            self.assertFalse(w.verify_consistency(m, n, ROOTS[m], ROOTS[n], bad))
        self.assertTrue(w.verify_consistency(0, 8, ROOTS[0], ROOTS[8], []))
        self.assertTrue(w.verify_consistency(8, 8, ROOTS[8], ROOTS[8], []))
        self.assertFalse(w.verify_consistency(8, 8, ROOTS[8], ROOTS[7], []))
        self.assertFalse(w.verify_consistency(8, 7, ROOTS[8], ROOTS[7], []))

    def test_every_shape(self):
        hs = [w.leaf_hash(bytes([i, i * 7 % 256])) for i in range(40)]
        for n in range(1, 41):
            root = mth(hs[:n])
            for i in range(n):
                self.assertTrue(w.verify_inclusion(i, n, hs[i], path(i, hs[:n]), root))
            for m in range(1, n):
                p = subproof(m, hs[:n], True)
                self.assertTrue(w.verify_consistency(m, n, mth(hs[:m]), root, p), (m, n))
                self.assertFalse(w.verify_consistency(m, n, mth(hs[:m]), mth(hs[:n - 1] + [hs[0]]), p))


class Encoding(unittest.TestCase):
    def test_event_hash(self):
        # the same encoding as test/audit_hash.sql; a NULL is length -1
        ev = {"agent_id": "agent:1", "policy": "default", "seq": 1, "event_type": "requested",
              "occurred_at": datetime.datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=datetime.timezone.utc),
              "actor": "a\u00e9", "db_user": "u", "previous_state": None,
              "new_state": "pending_approval", "details": "{}", "prev_hash": None}
        enc = (b"\x01" + b"\x00\x00\x00\x07agent:1" + b"\x00\x00\x00\x07default"
               + (1).to_bytes(8, "big") + b"\x00\x00\x00\x09requested"
               + (1000005).to_bytes(8, "big") + b"\x00\x00\x00\x03a\xc3\xa9" + b"\x00\x00\x00\x01u"
               + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x10pending_approval" + b"\x00\x00\x00\x02{}"
               + b"\xff\xff\xff\xff")
        self.assertEqual(w.event_hash(ev), hashlib.sha256(enc).digest())

    def test_checkpoint(self):
        o, n, r = w.parse_checkpoint("example.invalid/log\n8\n" + __import__("base64").b64encode(ROOTS[8]).decode() + "\n")
        self.assertEqual((o, n, r), ("example.invalid/log", 8, ROOTS[8]))
        with self.assertRaises(ValueError):
            w.parse_checkpoint("example.invalid/log\n8\n")


if __name__ == "__main__":
    unittest.main()
