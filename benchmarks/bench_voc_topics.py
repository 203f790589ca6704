"""High-frequency topic analysis of generated customer messages: wall/CPU time, peak memory, and how
well the topics recover the templates' known groups (adjusted Rand index).

    .venv/bin/python benchmarks/bench_voc_topics.py [--messages 100000] [--method embedding|tfidf|both]

Messages come from eight groups of paraphrase templates (bill too high, how to pay, outage, ...)
with slots (months, amounts, places, 户号, particles), so a month's 100,000 messages hold tens of
thousands of distinct texts, like real traffic.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.experience.voc.topics import analyse  # noqa: E402

GROUPS: dict[str, list[str]] = {
    "电费高": ["{m}电费为什么这么高", "电费比上个月高了{a}块", "{m}的电费怎么突然涨了", "这电费也太贵了吧",
             "我家{m}用电不多电费却很高"],
    "缴费": ["怎么用微信交电费", "在哪里可以缴费", "支付宝能不能缴电费", "{p}有没有缴费的地方", "代扣怎么办理"],
    "停电": ["{p}停电了什么时候来电", "我家突然停电了", "停电多久能恢复", "{p}今天为什么停电", "又停电了"],
    "账单": ["帮我查一下{m}的账单", "户号{n}的账单", "查账单", "{m}账单发一下", "我想看看电费账单明细"],
    "投诉": ["我要投诉抄表员", "投诉你们服务态度差", "{p}营业厅的人态度很差我要投诉", "我要投诉", "你们乱收费我要投诉"],
    "人工": ["转人工", "我要找人工客服", "人工服务", "能不能让真人来处理", "叫你们工作人员来"],
    "发票": ["电费发票怎么开", "{m}的发票在哪里下载", "我要开增值税发票", "电子发票怎么打印", "发票抬头写错了"],
    "阶梯": ["阶梯电价怎么算", "峰谷电价是多少", "{m}进入第二档了吗", "居民阶梯电量是多少度", "分时电价怎么申请"],
}
MONTHS = [f"{i}月" for i in range(1, 13)] + ["这个月", "上个月"]
PLACES = ["天河区", "越秀区", "海珠区", "番禺", "我们小区", "白云区", "黄埔"]
TAILS = ["", "", "", "啊", "呢", "？", "！", "，谢谢", "，麻烦尽快"]


def generate(count: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    names = list(GROUPS)
    texts, truth = [], []
    for _ in range(count):
        group = rng.choice(names)
        text = rng.choice(GROUPS[group]).format(m=rng.choice(MONTHS), a=rng.randint(20, 400), p=rng.choice(PLACES),
                                              n=f"4401{rng.randint(0, 99999999):08d}")
        texts.append(text + rng.choice(TAILS))
        truth.append(group)
    return texts, truth


def run(method: str, texts: list[str], previous: list[str], truth: list[str]) -> None:
    from sklearn.metrics import adjusted_rand_score

    cpu, wall = time.process_time(), time.perf_counter()
    report = analyse(texts, previous, period="bench", method=method)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[{method}] {report.messages} messages ({report.distinct} distinct), k={report.k} "
          f"(silhouette {report.silhouette:.3f}); wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak_mb:.0f} MB")
    for topic in report.topics:
        print(f"   {topic.count:>7}  {topic.trend:>6}  {topic.label}  e.g. {topic.examples[0]}")
    labels = [report.topic_of[text.strip()] for text in texts]
    print(f"   adjusted Rand index vs the template groups: {adjusted_rand_score(truth, labels):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--method", choices=("embedding", "tfidf", "both"), default="both")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    texts, truth = generate(args.messages, args.seed)
    previous, _ = generate(args.messages // 2, args.seed + 1)
    for method in (("tfidf", "embedding") if args.method == "both" else (args.method,)):
        run(method, texts, previous, truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
