"""expected_cost.py: the cost of a usage row, worked out apart from billing.

Used by the integration scripts that check billing's money (ledger_test.sh,
recon_test.sh): the same rules as billing/bill_cost.c, written again in
Python's Decimal from the price table's text, so a mistake in the C code
cannot hide in the check.

  prices   the LiteLLM-format table, loaded with parse_float=Decimal
  model    the priced model name (a key of prices)
  toks     (input, output, cache 5m, cache 1h, cache read) tokens
  mult     the group's rate multiplier, a Decimal

Returns (input, output, cache creation, cache read, total, actual, mult)
as usage_logs stores them, and whether the long-context tier applied.
Each bucket is rounded half up to 1e-10 USD; the total is the sum of the
rounded buckets; actual = total x multiplier, rounded the same way.  The
long tier applies to the whole request when the prompt (input, cache
writes and reads) is above 200k tokens and the model has such prices.
"""
from decimal import Decimal, ROUND_HALF_UP

Q = Decimal("0.0000000001")
LONG = "_above_200k_tokens"


def _r(x):
    return x.quantize(Q, rounding=ROUND_HALF_UP)


def row_cost(prices, model, toks, mult):
    p = prices[model]
    long_ = ("input_cost_per_token" + LONG) in p and sum(toks) - toks[1] > 200000
    sfx = LONG if long_ else ""

    def price(k, fallback):
        return p.get(k + sfx, p.get(k, fallback))

    pin = price("input_cost_per_token", None)
    pout = price("output_cost_per_token", None)
    p5 = price("cache_creation_input_token_cost", pin)
    p1 = price("cache_creation_input_token_cost_above_1hr", p5)
    pr = price("cache_read_input_token_cost", pin)
    c = [_r(toks[0] * pin), _r(toks[1] * pout), _r(toks[2] * p5),
         _r(toks[3] * p1), _r(toks[4] * pr)]
    total = sum(c)
    return (c[0], c[1], c[2] + c[3], c[4], total, _r(total * mult), mult), long_
