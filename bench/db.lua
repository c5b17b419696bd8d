-- random ids 1..10000 for GET /db/{id}, like TechEmpower's single query test
request = function()
  return wrk.format("GET", "/db/" .. math.random(1, 10000))
end
