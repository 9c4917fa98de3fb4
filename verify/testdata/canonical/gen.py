#!/usr/bin/env python3
"""Generate vectors.json: golden cases for verify.CanonicalJSON.

Every case holds raw wire bytes (mostly NOT canonical: compact separators,
unsorted keys, raw UTF-8, odd number spellings, ...) and what real CPython
makes of them:

    json.dumps(json.loads(raw), sort_keys=True).encode()

json.loads is given the bytes, exactly as a Python webhook receiver would
(request.body / request.get_data()), so its bytes-decoding rules apply:
UTF-8 with "surrogatepass", a UTF-8 BOM is skipped, UTF-16/32 are detected.
Inputs that CPython rejects are stored with "error" instead of "canonical".
"recanonical" is present when feeding "canonical" back to CPython gives
something else (see below).

Run from anywhere:  python3 verify/testdata/canonical/gen.py
"""

import base64
import json
import os
import random
import struct
import sys

CASES = [
    # --- structure, separators, key order --------------------------------
    ("compact_unsorted", b'{"b":1,"a":2}'),
    ("already_canonical", b'{"a": 1, "b": [1, 2], "c": {"d": "e"}}'),
    ("nested_unsorted", b'{"z":{"y":1,"x":[{"b":2,"a":1}]},"a":null}'),
    ("whitespace_everywhere", b' \t\n\r{ "a" : [ 1 , 2 ] ,\n\t"b" : { } } \r\n\t '),
    ("whitespace_crlf_pretty", b'{\r\n  "id": "evt_1",\r\n  "data": {\r\n    "id": 7\r\n  }\r\n}\r\n'),
    ("empty_object", b"{}"),
    ("empty_array", b"[]"),
    ("empty_containers_spaced", b"[ { } , [ ] , {\n} ]"),
    ("nested_empty_containers", b'{"e":{"f":{}},"d":[[]],"c":[{}],"b":[],"a":{}}'),
    ("literals", b"[true,false,null]"),
    ("top_level_string", b'"hello"'),
    ("top_level_true", b"true"),
    ("top_level_int_padded", b"  42  \n"),
    ("duplicate_keys_last_wins", b'{"a":1,"b":2,"a":3}'),
    ("duplicate_keys_triple", b'{"k":"first","k":"second","j":0,"k":"third"}'),
    ("duplicate_key_via_escape", b'{"a":1,"\\u0061":2}'),
    ("duplicate_keys_nested_values", b'{"a":{"x":1,"z":2},"b":0,"a":{"y":[3,2,1]}}'),
    ("deep_nesting_arrays_500", b"[" * 500 + b'{"b":1,"a":2}' + b"]" * 500),
    ("deep_nesting_objects_200", b'{"k":' * 200 + b"[]" + b"}" * 200),
    ("deep_nesting_unsorted_300", b'{"b":0,"a":' * 300 + b'"x"' + b"}" * 300),
    ("unsorted_within_unsorted",
     b'{"z":[{"d":{"y":1,"x":2},"c":0}],"a":{"q":{"s":1,"r":{"u":1,"t":2}},"p":0},'
     b'"z":[{"f":1,"e":{"h":1,"g":{"j":1,"i":2}}}]}'),
    ("dropped_duplicate_holds_unsorted", b'{"a":{"c":{"e":1,"d":2},"b":0},"a":[]}'),
    # --- keys sorted by code point -----------------------------------------
    ("key_sort_ascii_case", b'{"b":1,"a":2,"B":3,"A":4,"aa":5,"":6,"_":7,"0":8}'),
    ("key_sort_unicode", '{"é":1,"z":2,"\u00ff":3,"\uffff":4,"\ue000":5,"\ud7ff":6,"Ā":7}'.encode()),
    ("key_sort_astral_after_bmp", '{"😀":1,"\uffff":2,"\ue000":3,"a":4}'.encode()),
    ("key_sort_escaped_astral", b'{"\\ud83d\\ude00":1,"\\uffff":2,"\\ud7ff":3}'),
    ("key_sort_lone_surrogates", b'{"\\udfff":1,"\\ud800":2,"\\ue000":3,"\\ud7ff":4,"\\ud83d\\ude00":5}'),
    ("key_sort_raw_surrogate_pair_vs_astral",
     b'{"\xed\xa0\xbd\xed\xb8\x80":1,"\xf0\x9f\x98\x80":2,"\xef\xbf\xbf":3}'),
    ("key_sort_control_escapes", b'{"\\n":1,"A":2,"\\u0000":3," ":4,"\\"":5,"\\\\":6,"~":7,"\\u007f":8}'),
    ("key_sort_prefix", b'{"ab":1,"a":2,"abc":3,"a\\u0000":4}'),
    # --- strings and ensure_ascii --------------------------------------------
    ("raw_utf8_latin", '{"name":"José Müller","city":"Zürich"}'.encode()),
    ("raw_utf8_cjk", '{"title":"视频 完成","lang":"日本語"}'.encode()),
    ("raw_utf8_emoji_astral", '{"e":"🎬👍","flag":"🇫🇷"}'.encode()),
    ("raw_utf8_fffd_and_bom_char", '"\ufffd\ufeff\u2028\u2029"'.encode()),
    ("escaped_surrogate_pair", b'{"e":"\\ud83c\\udfac"}'),
    ("escaped_uppercase_hex", b'"\\u00E9\\u00C9\\uABCD\\uD83D\\uDE00"'),
    ("escaped_lone_high_surrogate", b'"\\ud800"'),
    ("escaped_lone_low_surrogate", b'"\\udc00x"'),
    ("escaped_reversed_surrogates", b'"\\udc00\\ud800"'),
    ("escaped_high_then_bmp", b'"\\ud83d\\u0041"'),
    ("escaped_high_high_low", b'"\\ud83d\\ud83d\\ude00"'),
    ("raw_encoded_lone_surrogate", b'"\xed\xa0\x80|\xed\xbf\xbf"'),
    ("raw_encoded_surrogate_pair", b'"\xed\xa0\xbd\xed\xb8\x80"'),
    ("escaped_high_raw_low", b'"\\ud83d\xed\xb8\x80"'),
    ("del_raw", b'"a\x7fb"'),
    ("del_escaped", b'"\\u007f"'),
    ("short_escapes", b'"\\n\\r\\t\\b\\f\\"\\\\"'),
    ("control_u_escapes", b'"\\u0000\\u0001\\u001f\\u000a\\u0009\\u0008\\u000c\\u000d\\u0022\\u005c"'),
    ("escaped_printable_ascii", b'"\\u0041\\u007e\\u0020\\u002F"'),
    ("slash_raw_and_escaped", b'{"url":"https:\\/\\/example.com/a\\/b"}'),
    ("all_printable_ascii", b'"' + bytes(c for c in range(0x20, 0x7f) if c not in b'"\\') + b'"'),
    ("raw_c1_controls", '"\u0080\u009f\u00a0"'.encode()),
    ("max_code_point", '"\U0010ffff"'.encode()),
    ("empty_string_key_and_value", b'{"":""}'),
    # --- integers -----------------------------------------------------------
    ("big_int", b"123456789012345678901234567890123456789"),
    ("big_negative_int", b"-98765432109876543210987654321098765432109876543210"),
    ("int_64bit_edges", b"[9223372036854775807,9223372036854775808,-9223372036854775809,18446744073709551616]"),
    ("neg_zero_int", b"-0"),
    ("neg_zero_int_in_array", b"[-0,0,-1,10]"),
    ("int_4300_digits", b"7" * 4300),
    ("neg_int_4300_digits", b"-" + b"7" * 4300),
    # --- floats -------------------------------------------------------------
    ("neg_zero_float", b"[-0.0,-0e0,-0E+5,0.0e-0]"),
    ("one_point_zero", b"1.0"),
    ("upper_e", b"1E5"),
    ("small_exp", b"1e-5"),
    ("exp_16", b"1e16"),
    ("exp_15", b"1e15"),
    ("overflow_inf", b"1e400"),
    ("overflow_neg_inf", b"[-1e400,1.8e308,-1.7976931348623159e308]"),
    ("point_one", b"0.1"),
    ("big_float", b"1.5e300"),
    ("min_subnormal", b"5e-324"),
    ("underflow_zero", b"[2e-324,1e-400,-1e-400,1e-99999999999999999999]"),
    ("huge_exponent", b"[1e99999999999999999999,-1e+99999999999999999999]"),
    ("nan_infinity_literals", b"[NaN,Infinity,-Infinity]"),
    ("nan_infinity_keys_values", b'{"n":NaN,"i":Infinity,"m":-Infinity}'),
    ("trailing_zero_fractions", b"[1.10,100E-2,1e+2,1E-0,0.0001,0.00001,10.0,2.50]"),
    ("repr_boundaries", b"[123456789012345.0,1234567890123456.0,12345678901234567.0,9999999999999998.0,0.0001234,0.00001234]"),
    ("shortest_repr", b"[0.30000000000000004,0.1e1,3.141592653589793238462643383279,2.2250738585072014e-308,1.7976931348623157e308]"),
    ("halfway_rounding", b"[9007199254740993.0,9007199254740993,9007199254740995.0,1.00000000000000011102230246251565404236316680908203125]"),
    ("long_mantissa", b"0." + b"3" * 800 + b"e1"),
    ("long_mantissa_halfway", b"1" + b"0" * 15 + b"1" + b"0" * 600 + b"1.0"),
    ("exponent_forms", b"[1e0,1e+0,1e-0,1E+01,1e-04,1e-05,1.5e-07,5e22,1e21,1e17]"),
    # --- encodings json.loads detects in bytes ------------------------------
    ("utf8_bom_skipped", b'\xef\xbb\xbf{"b":1,"a":"\xc3\xa9"}'),
    ("utf16_with_bom", '{"b":1,"a":"é😀"}'.encode("utf-16")),
    ("utf16_be_no_bom", '{"b":1,"a":"é😀"}'.encode("utf-16-be")),
    ("utf16_le_no_bom", '{"b":1,"a":"é😀"}'.encode("utf-16-le")),
    ("utf16_le_two_bytes", "7".encode("utf-16-le")),
    ("utf16_lone_surrogate", b'\xff\xfe"\x00\x00\xd8"\x00'),
    ("utf32_with_bom", '{"b":1,"a":"é😀"}'.encode("utf-32")),
    ("utf32_be_no_bom", '[1,"😀"]'.encode("utf-32-be")),
    ("utf32_le_no_bom", '[1,"😀"]'.encode("utf-32-le")),
    ("utf32_lone_surrogate", b'\xff\xfe\x00\x00"\x00\x00\x00\x00\xdc\x00\x00"\x00\x00\x00'),
    # --- realistic webhook bodies --------------------------------------------
    ("videovector_compact",
     '{"id":"evt_01HZX","event":"video.completed","created_at":"2024-05-01T12:00:00Z",'
     '"data":{"id":"vid_9","title":"Café — démo 🎥","duration":12.5,"size":1048576,'
     '"renditions":[{"height":1080,"url":"https://cdn.example.com/v/9/1080.mp4"},'
     '{"height":720,"url":"https://cdn.example.com/v/9/720.mp4"}],"score":1e-7,"tags":[]},'
     '"test":false}'.encode()),
    ("videovector_pretty_python_indent", json.dumps(
        {"id": "evt_2", "event": "video.failed", "data": {"error": "timeout\n", "retries": 3, "ratio": 0.5}},
        indent=2, ensure_ascii=False).encode()),
]

INVALID = [
    ("err_empty", b""),
    ("err_whitespace_only", b" \n\t "),
    ("err_trailing_comma_array", b"[1,2,]"),
    ("err_trailing_comma_object", b'{"a":1,}'),
    ("err_double_comma", b"[1,,2]"),
    ("err_leading_comma", b"[,1]"),
    ("err_extra_data", b"{} x"),
    ("err_two_values", b"1 2"),
    ("err_extra_close", b'{"a":1}}'),
    ("err_leading_zero", b"01"),
    ("err_leading_zero_neg", b"-01"),
    ("err_dot_no_digits", b"1."),
    ("err_dot_leading", b".5"),
    ("err_exp_no_digits", b"1e"),
    ("err_exp_sign_no_digits", b"[1.5e+]"),
    ("err_plus_sign", b"+1"),
    ("err_lone_minus", b"-"),
    ("err_hex_number", b"0x10"),
    ("err_raw_newline_in_string", b'"a\nb"'),
    ("err_raw_tab_in_string", b'"a\tb"'),
    ("err_raw_nul_in_string", b'"\x00"'),
    ("err_raw_unit_separator_in_string", b'"\x1f"'),
    ("err_invalid_escape_x", b'"\\x41"'),
    ("err_invalid_escape_single_quote", b'"\\\'"'),
    ("err_short_u_escape", b'"\\u12"'),
    ("err_bad_hex_u_escape", b'"\\u12G4"'),
    ("err_bad_second_surrogate_escape", b'"\\ud83d\\uZZZZ"'),
    ("err_unterminated_string", b'"abc'),
    ("err_unterminated_escape", b'"abc\\'),
    ("err_unterminated_array", b"[1,2"),
    ("err_unterminated_object", b'{"a":1'),
    ("err_single_quotes", b"{'a':1}"),
    ("err_unquoted_key", b"{a:1}"),
    ("err_number_key", b"{1:2}"),
    ("err_missing_colon", b'{"a" 1}'),
    ("err_missing_value", b'{"a":}'),
    ("err_invalid_utf8_ff", b'"\xff"'),
    ("err_truncated_utf8", b'"\xc3"'),
    ("err_overlong_utf8", b'"\xc0\xaf"'),
    ("err_utf8_above_max", b'"\xf4\x90\x80\x80"'),
    ("err_truncated_surrogate", b'"\xed\xa0"'),
    ("err_non_ascii_outside_string", '[1,é]'.encode()),
    ("err_nan_lowercase", b"nan"),
    ("err_neg_nan", b"-NaN"),
    ("err_infinity_lowercase", b"infinity"),
    ("err_plus_infinity", b"+Infinity"),
    ("err_true_capitalized", b"True"),
    ("err_comment", b"[1 /* c */]"),
    ("err_int_4301_digits", b"7" * 4301),
    ("err_deep_nesting", b"[" * 5000 + b"]" * 5000),
    ("err_double_utf8_bom", b"\xef\xbb\xbf\xef\xbb\xbf{}"),
    ("err_bom_only", b"\xef\xbb\xbf"),
    ("err_utf16_odd_length", '[1]'.encode("utf-16-le") + b"\x00"),
    ("err_utf32_above_max", b"\x00\x00\x00[\x00\x11\x00\x00\x00\x00\x00]"),
    ("err_arabic_indic_digit", '\u0661'.encode()),
    ("err_nbsp_whitespace", '\u00a0[]'.encode()),
    ("err_vertical_tab_whitespace", b"\x0b[]"),
]


def random_float_cases():
    """Random doubles in several non-canonical spellings; canonical is repr."""
    rng = random.Random(20240501)
    cases = []
    for batch in range(8):
        vals = []
        for _ in range(40):
            kind = rng.random()
            if kind < 0.5:
                bits = rng.getrandbits(64)
                v = struct.unpack("<d", struct.pack("<Q", bits))[0]
                if v != v or v in (float("inf"), float("-inf")):
                    continue
            elif kind < 0.8:
                v = rng.uniform(-1e6, 1e6)
            else:
                v = rng.randint(-10**6, 10**6) / 10 ** rng.randint(0, 8)
            vals.append(v)
        fmt = ["%.17g", "%.25e", "%r", "%.20E"][batch % 4]
        parts = []
        for v in vals:
            s = fmt % v if fmt != "%r" else repr(v)
            if "e" not in s.lower() and "." not in s:
                s += ".0"
            parts.append(s)
        cases.append(("random_floats_%d" % batch, ("[" + ",".join(parts) + "]").encode()))
    return cases


def random_document(rng, depth=0):
    r = rng.random()
    if depth > 4 or r < 0.35:
        choice = rng.randrange(7)
        if choice == 0:
            return rng.randint(-10**30, 10**30)
        if choice == 1:
            return rng.uniform(-1e5, 1e5)
        if choice == 2:
            return rng.choice([True, False, None])
        alphabet = "abcXYZ019 /\"\\\n\t\x01\x7f\u00e9\u00ff\u4e2d\uffff\U0001F600\U0001F3AC\ud800"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if r < 0.65:
        return [random_document(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = "a b c A é 😀 \uffff \ue000 \n _ ab".split(" ")
    return {rng.choice(keys) + rng.choice(["", "x", "1"]): random_document(rng, depth + 1)
            for _ in range(rng.randrange(6))}


def random_document_cases():
    """Random documents written in non-canonical ways."""
    rng = random.Random(7)
    cases = []
    for i in range(12):
        doc = random_document(rng)
        style = i % 3
        if style == 0:
            raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        elif style == 1:
            raw = json.dumps(doc, indent="\t", ensure_ascii=False)
        else:
            raw = json.dumps(doc, separators=(" , ", " : "))
        cases.append(("random_document_%d" % i, raw.encode("utf-8", "surrogatepass")))
    return cases


def main():
    out = []
    names = set()
    all_cases = CASES + random_float_cases() + random_document_cases()
    for name, raw in all_cases + INVALID:
        assert name not in names, name
        names.add(name)
        entry = {"name": name, "input": base64.b64encode(raw).decode()}
        try:
            canonical = json.dumps(json.loads(raw), sort_keys=True).encode()
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
            if not name.startswith("err_"):
                sys.exit("%s: CPython rejected a valid case: %r" % (name, e))
            entry["error"] = type(e).__name__
        else:
            if name.startswith("err_"):
                sys.exit("%s: CPython accepted an invalid case" % name)
            entry["canonical"] = base64.b64encode(canonical).decode()
            # json.dumps output is not always a fixed point: raw UTF-8
            # surrogates (surrogatepass) are written as \udXXX escapes, which
            # json.loads joins into one code point the second time round.
            again = json.dumps(json.loads(canonical), sort_keys=True).encode()
            if again != canonical:
                entry["recanonical"] = base64.b64encode(again).decode()
        out.append(entry)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    with open(path, "w") as f:
        json.dump({"python": sys.version.split()[0], "cases": out}, f, indent=1)
        f.write("\n")
    valid = sum(1 for e in out if "canonical" in e)
    print("wrote %d cases (%d valid, %d invalid) to %s" % (len(out), valid, len(out) - valid, path))


if __name__ == "__main__":
    main()
