import sys; sys.path.insert(0, "/work/snap-u/scripts")
import outside_data_probe as probe
lr = float(sys.argv[1])
for s in range(int(sys.argv[2])):
    print(s, round(probe.train("unscaled", s, "plain", lr, 100, "selection", True), 1), flush=True)
