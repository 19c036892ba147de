# Put on PYTHONPATH for the barman-cloud 3.4 peers by test/harness/barman.ts.
# Debian bookworm's python3-snappy 0.5.3 cannot run its framing format on Python 3.11: its C
# _crc32c raises "PY_SSIZE_T_CLEAN macro must be defined for '#' formats", so barman-cloud 3.4's
# --snappy fails here for everyone. This replaces only that checksum, with python3-crcmod's C
# CRC-32C when installed, else a table-driven one (Castagnoli, reflected polynomial 0x82F63B78);
# the framing code itself stays python-snappy's, so pgark's snappy is checked against barman's.
try:
    import snappy.snappy as _framing
except Exception:  # snappy not installed: nothing to fix
    _framing = None

if _framing is not None:
    try:
        import crcmod.predefined

        _framing._crc32c = crcmod.predefined.mkPredefinedCrcFun('crc-32c')
    except ImportError:
        _TABLE = []
        for _i in range(256):
            _c = _i
            for _ in range(8):
                _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
            _TABLE.append(_c)

        def _crc32c(data):
            crc = 0xFFFFFFFF
            table = _TABLE
            for b in bytes(data):
                crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
            return crc ^ 0xFFFFFFFF

        _framing._crc32c = _crc32c
