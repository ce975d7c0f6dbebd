import time
from mapper.prune.stationary import paper_savings, savings_table
t=time.time()
rows = paper_savings(["vgg8:cifar"], unrolled_chip="tianjic")
print(savings_table(rows), time.time()-t)
