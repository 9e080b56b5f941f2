import multiprocessing, threading, time, uuid, sys
import sqlalchemy as sa
from ksmart_common.envelope import NewEvent, file_stream_id
from ksmart_common.eventstore import EventStore
METADATA = {"actor_id": str(uuid.uuid4()), "actor_roles": ["citizen"], "correlation_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()), "causation_id": None, "local_body": "KL-EKM-KOC"}
DATA = {"form": {"child_name": "Anjali", "mother_name": "Asha Menon", "address": "12 MG Road, Kochi " * 4}, "local_body": "KL-EKM-KOC"}

def run(url, writers, batch, seconds=3):
    engine = sa.create_engine(url, pool_size=writers + 2)
    store = EventStore(engine)
    counts = [0] * writers
    end = time.perf_counter() + seconds
    def w(i):
        while time.perf_counter() < end:
            store.append(file_stream_id(uuid.uuid4()), [NewEvent("ApplicationSubmitted", DATA) for _ in range(batch)], 0, METADATA)
            counts[i] += batch
    ts = [threading.Thread(target=w, args=(i,)) for i in range(writers)]
    [t.start() for t in ts]; [t.join() for t in ts]
    store.close(); engine.dispose()
    return sum(counts) / seconds

if __name__ == "__main__":
    url = sys.argv[1]
    for writers, batch in [(1,1),(4,1),(8,1),(16,1),(1,10),(4,10)]:
        print(writers, batch, run(url, writers, batch))
