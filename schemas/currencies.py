"""The ISO 4217 currency codes a usage row's `unitPrice` may be quoted in.

Typed in rather than fetched, so validation needs no network and cannot change under a
running pipeline; a new ISO amendment is a reviewed one-line change here.

`ISO_4217_CODES` is ISO 4217 List One (the active codes) as published by SIX, the
maintenance agency, on 2026-01-01: 178 codes, including funds codes (BOV, CHE, CHW, CLF,
COU, MXV, USN, UYI, UYW), precious metals (XAG, XAU, XPD, XPT), bond-market and other
units of account (XBA-XBD, XDR, XSU, XUA, XAD). Recent amendments added XAD, XCG and ZWG
and withdrew ANG, BGN, CUC, HRK, SLL and ZWL, which are therefore rejected.

`CURRENCIES`, the set rows are checked against, leaves out two codes that are not money a
price can be in: XTS is reserved for testing, and XXX means "no currency is involved"
(a row without a currency leaves the cell empty instead).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CURRENCIES", "ISO_4217_CODES"]

_LIST_ONE: Final = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK
DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD
SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAD XAF XAG XAU XBA
XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG
"""

ISO_4217_CODES: Final = frozenset(_LIST_ONE.split())

CURRENCIES: Final = ISO_4217_CODES - {"XTS", "XXX"}
