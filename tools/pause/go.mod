module github.com/cnstack/cnstack/tools/pause

go 1.26.0
