"""Types of the C extension schemas/_avro_batch.c (see its header comment)."""

def scan_records(
    rows: int,
    values: tuple[str, int, object, object, object],
    header_size: int,
    marker: bytes,
    accepted: tuple[bytes, ...],
    kinds: bytes,
    max_data: int,
    /,
) -> tuple[bytes, int, bytearray, list[bytearray], list[bytearray], list[int]]:
    """Decode the values framed by one of the `accepted` headers into Arrow column buffers.

    `values` is a large binary column given as `encode_records` takes a column ("S", its
    offset, validity, int64 offsets, data); a null value is not framed. `kinds` has one
    code per record field: ``s``/``b``/``l`` for string, boolean and long, upper case for
    their ``["null", T]`` unions. Returns, in order: a status byte per value (0 decoded,
    1 no `marker` or shorter than the header, 2 a header not accepted, 3 not exactly one
    record, or a string that is not UTF-8); the number of decoded rows; the data buffer
    their string views point into; per field, its validity bitmap; per field, its 16-byte
    string views, int64 values or boolean bitmap; per field, its null count. Raises
    OverflowError when the decoded bodies would exceed `max_data` bytes. The scan releases
    the GIL (it holds the buffers): other threads run meanwhile.
    """

def encode_records(
    rows: int,
    columns: list[tuple[str, int, object, object, object]],
    prefix: bytes,
    /,
) -> list[bytes]:
    """Encode `rows` rows as `prefix` then one Avro record body each.

    Each of `columns`, in field order, is (code, offset, validity, values, data): the
    field's code as for `scan_records`, and its Arrow array's offset and buffers (any
    object with the buffer protocol, or None): the validity bitmap (None: no nulls), then
    int64 offsets and the text for a large string, int64 values for a long, the bit-packed
    values for a boolean (data None). Raises ValueError for a buffer too short for `rows`,
    or a null in a field that is not a union with null. Rows are encoded a block at a time
    with the GIL released; only making the bytes objects holds it.
    """
